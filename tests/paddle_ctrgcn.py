"""The four CTR-GCN variants as Paddle layers, written from docs/model-family.md with PaddleVideo's
module names and creation order, for exporting real Paddle 3 inference models in tests. Imported
only where ``paddle`` is installed."""
import numpy as np
import paddle
from paddle import nn

FUSED = ("CTRGCN_lightV1", "CTRGCN_lightV2")
TEMPORAL_ONLY = (2, 3, 5, 8)  # blocks without a spatial module in CTRGCN_light and CTRGCN_lightV1


def relation_width(cin):
    return 8 if cin in (3, 9) else cin // 8


class TemporalConv(nn.Layer):
    def __init__(self, cin, cout, kernel, stride=1, dilation=1, bias=True):
        super().__init__()
        pad = (kernel - 1) * dilation // 2
        self.conv = nn.Conv2D(cin, cout, (kernel, 1), stride=(stride, 1), padding=(pad, 0), dilation=(dilation, 1),
                              bias_attr=None if bias else False)
        self.bn = nn.BatchNorm2D(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


def max_pool(stride):
    return nn.MaxPool2D((3, 1), stride=(stride, 1), padding=(1, 0))


class MultiScaleTemporal(nn.Layer):
    """Kernel 5, dilations (1, 2); ``fused``: one pointwise conv feeds branches 0-2."""

    def __init__(self, cin, cout, stride, residual, fused):
        super().__init__()
        self.fused = fused
        B = cout // 4
        if fused:
            self.conv_pw = nn.Sequential(nn.Conv2D(cin, 3 * B, 1, bias_attr=False), nn.BatchNorm2D(3 * B), nn.ReLU())
            self.branches = nn.LayerList([TemporalConv(B, B, 5, stride, d, bias=False) for d in (1, 2)])
            self.branches.append(nn.Sequential(max_pool(stride), nn.BatchNorm2D(B)))
            self.branches.append(nn.Sequential(nn.Conv2D(cin, cout - 3 * B, 1, stride=(stride, 1), bias_attr=False),
                                               nn.BatchNorm2D(cout - 3 * B)))
        else:
            self.branches = nn.LayerList([
                nn.Sequential(nn.Conv2D(cin, B, 1), nn.BatchNorm2D(B), nn.ReLU(), TemporalConv(B, B, 5, stride, d))
                for d in (1, 2)])
            self.branches.append(nn.Sequential(nn.Conv2D(cin, B, 1), nn.BatchNorm2D(B), nn.ReLU(), max_pool(stride),
                                               nn.BatchNorm2D(B)))
            self.branches.append(nn.Sequential(nn.Conv2D(cin, B, 1, stride=(stride, 1)), nn.BatchNorm2D(B)))
        self.has_residual = residual
        self.residual_conv = residual and (cin != cout or stride != 1)
        if self.residual_conv:
            self.residual = TemporalConv(cin, cout, 1, stride, bias=not fused)

    def forward(self, x):
        if self.fused:
            inputs = list(paddle.chunk(self.conv_pw(x), 3, axis=1)) + [x]
            outs = [branch(z) for branch, z in zip(self.branches, inputs)]
        else:
            outs = [branch(x) for branch in self.branches]
        out = paddle.concat(outs, axis=1)
        if self.has_residual:
            out = out + (self.residual(x) if self.residual_conv else x)
        return out


class CTRGC(nn.Layer):
    def __init__(self, cin, cout):
        super().__init__()
        R = relation_width(cin)
        self.conv1, self.conv2 = nn.Conv2D(cin, R, 1), nn.Conv2D(cin, R, 1)
        self.conv3, self.conv4 = nn.Conv2D(cin, cout, 1), nn.Conv2D(R, cout, 1)

    def forward(self, x, A, alpha):
        q, k = self.conv1(x).mean(-2), self.conv2(x).mean(-2)
        rel = paddle.tanh(q.unsqueeze(-1) - k.unsqueeze(-2))
        adj = self.conv4(rel) * alpha + A.unsqueeze(0).unsqueeze(0)
        return paddle.matmul(self.conv3(x), adj.transpose([0, 1, 3, 2]))


class FusedCTRGC(nn.Layer):
    """``shared``: lightV2's one relation for the three subsets; otherwise lightV1's three."""

    def __init__(self, cin, cout, shared):
        super().__init__()
        R = relation_width(cin)
        self.R, self.cout, self.shared = R, cout, shared
        self.conv1 = nn.Conv2D(cin, (2 if shared else 6) * R + 3 * cout, 1)
        self.conv2 = nn.LayerList([nn.Conv2D(R, cout, 1) for _ in range(3)])

    def forward(self, x, A, alpha):
        y = self.conv1(x)
        P = (2 if self.shared else 6) * self.R
        q, k = paddle.chunk(y[:, :P].mean(-2), 2, axis=1)
        rel = paddle.tanh(q.unsqueeze(-1) - k.unsqueeze(-2))
        vals = paddle.chunk(y[:, P:], 3, axis=1)
        out = None
        for i in range(3):
            r = rel if self.shared else rel[:, i * self.R:(i + 1) * self.R]
            adj = self.conv2[i](r) * alpha + A[i].unsqueeze(0).unsqueeze(0)
            z = paddle.matmul(vals[i], adj.transpose([0, 1, 3, 2]))
            out = z if out is None else out + z
        return out


class UnitGCN(nn.Layer):
    def __init__(self, cin, cout, A, variant):
        super().__init__()
        fused = variant in FUSED
        if fused:
            self.convs = FusedCTRGC(cin, cout, shared=variant == "CTRGCN_lightV2")
        else:
            self.convs = nn.LayerList([CTRGC(cin, cout) for _ in range(3)])
        self.fused = fused
        self.has_down = cin != cout
        if self.has_down:
            self.down = nn.Sequential(nn.Conv2D(cin, cout, 1, bias_attr=False if fused else None), nn.BatchNorm2D(cout))
        self.PA = paddle.create_parameter(list(A.shape), "float32",
                                          default_initializer=nn.initializer.Assign(A.astype(np.float32)))
        self.alpha = paddle.create_parameter([1], "float32", default_initializer=nn.initializer.Constant(0.0))
        self.bn = nn.BatchNorm2D(cout)

    def forward(self, x):
        if self.fused:
            y = self.convs(x, self.PA, self.alpha)
        else:
            y = None
            for i in range(3):
                z = self.convs[i](x, self.PA[i], self.alpha)
                y = z if y is None else y + z
        y = self.bn(y) + (self.down(x) if self.has_down else x)
        return nn.functional.relu(y)


class TCNGCNUnit(nn.Layer):
    def __init__(self, cin, cout, A, variant, stride=1, residual=True):
        super().__init__()
        mid = cin if (variant == "CTRGCN_lightV2" and stride > 1) else cout
        self.gcn1 = UnitGCN(cin, mid, A, variant)
        self.tcn1 = MultiScaleTemporal(mid, cout, stride, residual=False, fused=variant in FUSED)
        self.mode = "none" if not residual else ("identity" if cin == cout and stride == 1 else "conv")
        if self.mode == "conv":
            self.residual = TemporalConv(cin, cout, 1, stride, bias=variant not in FUSED)

    def forward(self, x):
        res = 0 if self.mode == "none" else (x if self.mode == "identity" else self.residual(x))
        return nn.functional.relu(self.tcn1(self.gcn1(x)) + res)


class TCNUnit(nn.Layer):
    def __init__(self, cin, cout, variant, stride=1):
        super().__init__()
        self.tcn1 = MultiScaleTemporal(cin, cout, stride, residual=True, fused=variant in FUSED)

    def forward(self, x):
        return nn.functional.relu(self.tcn1(x))


def ntu_adjacency():
    inward = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10), (12, 11),
              (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (23, 8),
              (24, 25), (25, 12)]

    def norm(edges):
        B = np.zeros((25, 25))
        for i, j in edges:
            B[j - 1, i - 1] = 1
        col = B.sum(0)
        return B / np.where(col > 0, col, 1)

    return np.stack([np.eye(25), norm(inward), norm([(j, i) for i, j in inward])])


class Network(nn.Layer):
    """One of the four variants, NTU layout; input ``[N, C, T, V, M]``, output logits."""

    def __init__(self, variant, base, num_classes=60, num_person=2, in_channels=3, temporal_only=None):
        """``temporal_only``: the blocks without a spatial module, when not the variant's own."""
        super().__init__()
        A = ntu_adjacency()
        V = A.shape[1]
        self.data_bn = nn.BatchNorm1D(num_person * V * in_channels)
        widths = [(in_channels, base, 1), (base, base, 1), (base, base, 1), (base, base, 1), (base, 2 * base, 2),
                  (2 * base, 2 * base, 1), (2 * base, 2 * base, 1), (2 * base, 4 * base, 2), (4 * base, 4 * base, 1),
                  (4 * base, 4 * base, 1)]
        if temporal_only is None:
            temporal_only = TEMPORAL_ONLY if variant in ("CTRGCN_light", "CTRGCN_lightV1") else ()
        for k, (cin, cout, stride) in enumerate(widths, 1):
            if k in temporal_only:
                block = TCNUnit(cin, cout, variant, stride)
            else:
                block = TCNGCNUnit(cin, cout, A, variant, stride, residual=k != 1)
            self.add_sublayer(f"l{k}", block)
        self.fc = nn.Linear(4 * base, num_classes)

    def forward(self, x):
        N, C, T, V, M = x.shape
        x = x.transpose([0, 4, 3, 1, 2]).reshape([-1, M * V * C, T])
        x = self.data_bn(x).reshape([-1, M, V, C, T]).transpose([0, 1, 3, 4, 2]).reshape([-1, C, T, V])
        for k in range(1, 11):
            x = getattr(self, f"l{k}")(x)
        x = x.reshape([-1, M, x.shape[1], x.shape[2] * x.shape[3]]).mean(3).mean(1)
        return self.fc(x)


def paddle_state(state):
    """Project names -> this network's state dict names (BN statistics ``_mean`` / ``_variance``,
    ``fc.weight`` stored [in, out])."""
    out = {}
    for k, v in state.items():
        k = k.replace("running_mean", "_mean").replace("running_var", "_variance")
        out[k] = np.ascontiguousarray(v.T) if k == "fc.weight" else v
    return out
