"""The CTR-GCN family in PyTorch eager, written from docs/model-family.md for side-by-side
benchmarks: the module tree reproduces the official / PaddleVideo parameter names, so
``ctrgcn.Model.state_dict()`` loads into it unchanged. Benchmarks only; the package never imports it."""
import torch
from torch import nn


def relation_width(cin):
    return 8 if cin in (3, 9) else cin // 8


class TemporalConv(nn.Module):
    def __init__(self, cin, cout, k, stride=1, dilation=1, bias=True):
        super().__init__()
        pad = (k - 1) * dilation // 2
        self.conv = nn.Conv2d(cin, cout, (k, 1), (stride, 1), (pad, 0), (dilation, 1), bias=bias)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class MultiScaleTCN(nn.Module):
    """Unfused: four branches with their own 1x1 convs."""

    def __init__(self, cin, cout, stride, residual):
        super().__init__()
        B = cout // 4
        self.branches = nn.ModuleList()
        for d in (1, 2):
            self.branches.append(nn.Sequential(nn.Conv2d(cin, B, 1), nn.BatchNorm2d(B), nn.ReLU(inplace=True),
                                               TemporalConv(B, B, 5, stride, d)))
        self.branches.append(nn.Sequential(nn.Conv2d(cin, B, 1), nn.BatchNorm2d(B), nn.ReLU(inplace=True),
                                           nn.MaxPool2d((3, 1), (stride, 1), (1, 0)), nn.BatchNorm2d(B)))
        self.branches.append(nn.Sequential(nn.Conv2d(cin, B, 1, (stride, 1)), nn.BatchNorm2d(B)))
        self.res_kind = residual
        if residual == 2:
            self.residual = TemporalConv(cin, cout, 1, stride)

    def forward(self, x):
        out = torch.cat([b(x) for b in self.branches], 1)
        if self.res_kind == 1:
            out = out + x
        elif self.res_kind == 2:
            out = out + self.residual(x)
        return out


class FusedTCN(nn.Module):
    """PaddleVideo's fused temporal module: one pointwise conv for branches 0-2."""

    def __init__(self, cin, cout, stride, residual):
        super().__init__()
        B = cout // 4
        self.B = B
        self.conv_pw = nn.Sequential(nn.Conv2d(cin, 3 * B, 1, bias=False), nn.BatchNorm2d(3 * B), nn.ReLU(inplace=True))
        self.branches = nn.ModuleList([TemporalConv(B, B, 5, stride, 1, bias=False),
                                       TemporalConv(B, B, 5, stride, 2, bias=False),
                                       nn.Sequential(nn.MaxPool2d((3, 1), (stride, 1), (1, 0)), nn.BatchNorm2d(B)),
                                       nn.Sequential(nn.Conv2d(cin, cout - 3 * B, 1, (stride, 1), bias=False),
                                                     nn.BatchNorm2d(cout - 3 * B))])
        self.res_kind = residual
        if residual == 2:
            self.residual = TemporalConv(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        p = torch.split(self.conv_pw(x), self.B, 1)
        out = torch.cat([self.branches[0](p[0]), self.branches[1](p[1]), self.branches[2](p[2]),
                         self.branches[3](x)], 1)
        if self.res_kind == 1:
            out = out + x
        elif self.res_kind == 2:
            out = out + self.residual(x)
        return out


class CTRGC(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        R = relation_width(cin)
        self.conv1, self.conv2 = nn.Conv2d(cin, R, 1), nn.Conv2d(cin, R, 1)
        self.conv3, self.conv4 = nn.Conv2d(cin, cout, 1), nn.Conv2d(R, cout, 1)

    def forward(self, x, A, alpha):
        q, k, v = self.conv1(x).mean(-2), self.conv2(x).mean(-2), self.conv3(x)
        rel = torch.tanh(q.unsqueeze(-1) - k.unsqueeze(-2))
        Ahat = self.conv4(rel) * alpha + A
        return torch.einsum("ncuv,nctv->nctu", Ahat, v)


class FusedCTRGC(nn.Module):
    def __init__(self, cin, cout, shared):
        super().__init__()
        R = relation_width(cin)
        self.R, self.cout, self.nrel = R, cout, 1 if shared else 3
        self.conv1 = nn.Conv2d(cin, 2 * self.nrel * R + 3 * cout, 1)
        self.conv2 = nn.ModuleList([nn.Conv2d(R, cout, 1) for _ in range(3)])

    def forward(self, x, PA, alpha):
        nq = self.nrel * self.R
        q, k, v = torch.split(self.conv1(x), [nq, nq, 3 * self.cout], 1)
        rel = torch.tanh(q.mean(-2).unsqueeze(-1) - k.mean(-2).unsqueeze(-2))
        rels = [rel] * 3 if self.nrel == 1 else torch.split(rel, self.R, 1)
        vals = torch.split(v, self.cout, 1)
        out = 0
        for i in range(3):
            Ahat = self.conv2[i](rels[i]) * alpha + PA[i]
            out = out + torch.einsum("ncuv,nctv->nctu", Ahat, vals[i])
        return out


class UnitGCN(nn.Module):
    def __init__(self, cin, cout, A, fused, shared):
        super().__init__()
        self.fused = fused
        self.PA = nn.Parameter(torch.as_tensor(A, dtype=torch.float32).clone())
        self.alpha = nn.Parameter(torch.zeros(1))
        self.convs = FusedCTRGC(cin, cout, shared) if fused else nn.ModuleList([CTRGC(cin, cout) for _ in range(3)])
        self.down_kind = 2 if cin != cout else 1
        if cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=not fused), nn.BatchNorm2d(cout))
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        if self.fused:
            y = self.convs(x, self.PA, self.alpha)
        else:
            y = sum(conv(x, self.PA[i], self.alpha) for i, conv in enumerate(self.convs))
        y = self.bn(y)
        y = y + (self.down(x) if self.down_kind == 2 else x)
        return torch.relu(y)


class Block(nn.Module):
    def __init__(self, layout, A):
        super().__init__()
        L = layout
        TCN = FusedTCN if L["fused"] else MultiScaleTCN
        self.has_gcn = L["has_gcn"]
        if self.has_gcn:
            self.gcn1 = UnitGCN(L["gcn_cin"], L["gcn_cout"], A, L["fused"], L["nrel"] == 1)
            self.tcn1 = TCN(L["gcn_cout"], L["cout"], L["stride"], 0)
            self.res_kind = L["residual"]
            if self.res_kind == 2:
                self.residual = TemporalConv(L["cin"], L["cout"], 1, L["stride"], bias=not L["fused"])
        else:
            self.tcn1 = TCN(L["cin"], L["cout"], L["stride"], L["residual"])

    def forward(self, x):
        if not self.has_gcn:
            return torch.relu(self.tcn1(x))
        y = self.tcn1(self.gcn1(x))
        if self.res_kind == 1:
            y = y + x
        elif self.res_kind == 2:
            y = y + self.residual(x)
        return torch.relu(y)


class Net(nn.Module):
    """Built from a ctrgcn model's layout and spec, so both run the same network."""

    def __init__(self, model):
        super().__init__()
        spec = model.spec
        self.M, self.V, self.C = spec["num_person"], spec["num_joints"], spec["in_channels"]
        A = model.state_dict()["l1.gcn1.PA"]
        self.data_bn = nn.BatchNorm1d(self.M * self.V * self.C)
        for k, layout in enumerate(model._net.layout()):
            self.add_module(f"l{k + 1}", Block(layout, A))
        self.fc = nn.Linear(model._net.layout()[-1]["cout"], spec["num_classes"])
        self.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()}, strict=False)

    def forward(self, x):
        N, C, T, V, M = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(N, M * V * C, T)
        x = self.data_bn(x)
        x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)
        for k in range(1, 11):
            x = getattr(self, f"l{k}")(x)
        c = x.size(1)
        x = x.view(N, M, c, -1).mean(3).mean(1)
        return self.fc(x)
