"""The whole network: against the independent float64 reference (random weights, all variants,
three graphs, many lengths), against the golden vectors, its tensor names, files and its errors."""
import functools
import importlib
import os
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import ctrgcn
import reference as ref

VARIANTS = ("CTRGCN", "CTRGCN_light", "CTRGCN_lightV1", "CTRGCN_lightV2")
PARAMS_M = {"CTRGCN": 1.447, "CTRGCN_light": 1.027, "CTRGCN_lightV1": 1.463, "CTRGCN_lightV2": 1.118}
# a custom skeleton: a chain with a branch, one edge pointing "backwards", one isolated joint (8)
CUSTOM_EDGES = [(0, 1), (1, 2), (2, 3), (1, 4), (4, 5), (5, 6), (7, 6)]
CUSTOM_V = 9
# small bases for the custom graph: quick, and widths off the presets (14: B = 3, last = 5)
CUSTOM_BASE = {"CTRGCN": 16, "CTRGCN_light": 20, "CTRGCN_lightV1": 24, "CTRGCN_lightV2": 14}
# golden: variant -> (weights, eval) under shared/golden
GOLDEN_SETS = {
    "official-ntu": ("CTRGCN", "official/ntu_weights.npz", "official/ntu_eval.npz"),
    "official-ucla": ("CTRGCN", "official/ucla_weights.npz", "official/ucla_eval.npz"),
    "pv-light": ("CTRGCN_light", "paddlevideo/CTRGCN_light_weights.npz", "paddlevideo/CTRGCN_light_eval.npz"),
    "pv-lightV1": ("CTRGCN_lightV1", "paddlevideo/CTRGCN_lightV1_weights.npz", "paddlevideo/CTRGCN_lightV1_eval.npz"),
    "pv-lightV2": ("CTRGCN_lightV2", "paddlevideo/CTRGCN_lightV2_weights.npz", "paddlevideo/CTRGCN_lightV2_eval.npz"),
}
GOLDEN_WEIGHTS = {"CTRGCN": "official/ntu_weights.npz", "CTRGCN_light": "paddlevideo/CTRGCN_light_weights.npz",
                  "CTRGCN_lightV1": "paddlevideo/CTRGCN_lightV1_weights.npz",
                  "CTRGCN_lightV2": "paddlevideo/CTRGCN_lightV2_weights.npz"}


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    return np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)


def graph_setup(graph, variant):
    """(Model kwargs, reference spec, graph matrices)."""
    if graph == "ntu":
        kw, V, M, classes, base = dict(graph="ntu"), 25, 2, 60, None
    elif graph == "ucla":
        kw, V, M, classes, base = dict(graph="ucla", num_person=1), 20, 1, 10, None
    else:
        kw = dict(graph=CUSTOM_EDGES, num_joints=CUSTOM_V, num_person=3, base_channel=CUSTOM_BASE[variant])
        V, M, classes, base = CUSTOM_V, 3, 7, CUSTOM_BASE[variant]
    kw.setdefault("num_person", M)
    kw["num_classes"] = classes
    edges = ref.GRAPH_EDGES[graph][1] if graph in ref.GRAPH_EDGES else CUSTOM_EDGES
    return kw, ref.make_spec(variant, classes, V, M, 3, base), ref.graph_A(edges, V)


def skeleton_input(rng, spec, N, T):
    # offsets per coordinate like a camera-space skeleton, plus motion
    x = rng.standard_normal((N, spec["C"], T, spec["V"], spec["M"])) * 0.5
    x += np.array([0.2, -0.4, 3.0])[None, :, None, None, None]
    return x.astype(np.float32)


@functools.lru_cache(maxsize=None)
def calibrated(variant, graph):
    """A model with random weights, BN statistics taken from activations (jittered), and the same
    float32 values as float64 for the reference."""
    kw, spec, A = graph_setup(graph, variant)
    rng = np.random.default_rng(zlib.crc32(f"{variant}/{graph}".encode()))
    params = ref.random_params(spec, rng, A)
    params = ref.calibrate(spec, params, skeleton_input(rng, spec, 2, 24))
    f32 = {k: v.astype(np.float32) for k, v in params.items()}
    model = ctrgcn.Model(variant, **kw)
    model.load_state_dict(f32)
    return spec, {k: v.astype(np.float64) for k, v in f32.items()}, model


# ================================================================ (a) against the reference
@pytest.mark.parametrize("graph", ["ntu", "ucla", "custom"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_tensor_table_matches_definitions(variant, graph):
    kw, spec, A = graph_setup(graph, variant)
    model = ctrgcn.Model(variant, **kw)
    assert dict(model.tensor_shapes()) == dict(ref.param_shapes(spec))
    assert model.num_parameters() == ref.num_parameters(spec)
    # PA starts as the graph
    sd = model.state_dict()
    for name in (n for n in sd if n.endswith(".PA")):
        np.testing.assert_allclose(sd[name], A, atol=1e-7, err_msg=name)


CASES = [("ntu", 1, 64), ("ntu", 2, 37), ("ntu", 3, 1), ("ntu", 1, 2), ("ntu", 1, 3),
         ("ucla", 2, 52), ("ucla", 1, 5), ("ucla", 2, 1),
         ("custom", 2, 3), ("custom", 1, 2), ("custom", 3, 1), ("custom", 2, 17)]


@pytest.mark.parametrize("graph,N,T", CASES, ids=[f"{g}-N{n}-T{t}" for g, n, t in CASES])
@pytest.mark.parametrize("variant", VARIANTS)
def test_logits_match_reference(variant, graph, N, T):
    spec, params, model = calibrated(variant, graph)
    x = skeleton_input(np.random.default_rng(N * 1000 + T), spec, N, T)
    want, _ = ref.forward(spec, params, x)
    got = model(x)
    assert got.dtype == np.float32 and got.shape == (N, spec["num_classes"])
    assert rel_err(got, want) < 1e-4


@pytest.mark.parametrize("graph,T", [("ntu", 37), ("custom", 3), ("ucla", 2)])
@pytest.mark.parametrize("variant", VARIANTS)
def test_block_outputs_match_reference(variant, graph, T):
    spec, params, model = calibrated(variant, graph)
    N = 2
    x = skeleton_input(np.random.default_rng(T), spec, N, T)
    logits_ref, acts = ref.forward(spec, params, x)
    frames = ref.block_frames(T)
    for k in range(1, 11):
        logits, act = model.forward_block(x, k)
        assert act.shape == acts[k - 1].shape, f"block {k}"
        assert model.block_shape(k, T) == (acts[k - 1].shape[1], frames[k - 1])
        assert rel_err(act, acts[k - 1]) < 1e-4, f"block {k}"
        assert rel_err(logits, logits_ref) < 1e-4


def test_duplicate_edges_and_self_loops_follow_the_definition():
    edges = [(0, 1), (0, 1), (2, 1), (3, 3)]
    model = ctrgcn.Model("CTRGCN_lightV2", graph=edges, num_joints=5, base_channel=16)
    np.testing.assert_allclose(model.state_dict()["l1.gcn1.PA"], ref.graph_A(edges, 5), atol=1e-7)


def test_every_path_matters():
    """The random-weight check is only worth something if no path is dead: perturbing alpha, PA,
    the relation convs and the max-pool BN each moves the logits."""
    spec, params, _ = calibrated("CTRGCN", "ntu")
    x = skeleton_input(np.random.default_rng(0), spec, 1, 16)
    base, _ = ref.forward(spec, params, x)
    for name in ("l3.gcn1.alpha", "l3.gcn1.PA", "l3.gcn1.convs.1.conv1.weight", "l3.tcn1.branches.2.4.bias",
                 "l9.tcn1.branches.1.3.conv.weight", "data_bn.running_mean"):
        p = dict(params)
        p[name] = params[name] * 1.1 + 0.01
        moved, _ = ref.forward(spec, p, x)
        assert rel_err(moved, base) > 1e-4, name


def test_batch_is_independent():
    spec, _, model = calibrated("CTRGCN_lightV2", "ntu")
    x = skeleton_input(np.random.default_rng(5), spec, 3, 20)
    whole = model(x)
    for i in range(3):
        assert rel_err(model(x[i:i + 1]), whole[i:i + 1]) < 1e-5


def test_input_layouts_and_dtypes_agree():
    spec, _, model = calibrated("CTRGCN_light", "ucla")
    x = skeleton_input(np.random.default_rng(6), spec, 2, 9)
    want = model(x)
    np.testing.assert_array_equal(model(x.astype(np.float64)), want)
    np.testing.assert_array_equal(model(np.asfortranarray(x)), want)
    strided = np.repeat(x, 2, axis=2)[:, :, ::2]
    np.testing.assert_array_equal(model(strided), want)
    np.testing.assert_array_equal(model(x.tolist()), want)


def test_threads_do_not_change_results():
    spec, _, model = calibrated("CTRGCN", "custom")
    x = skeleton_input(np.random.default_rng(9), spec, 3, 11)
    model.set_threads(1)
    one = model(x)
    model.set_threads(0)
    assert rel_err(model(x), one) < 1e-6


# ================================================================ (b) golden vectors
@pytest.mark.parametrize("name", list(GOLDEN_SETS))
def test_golden_logits_and_blocks(name, golden):
    variant, wpath, epath = GOLDEN_SETS[name]
    model = ctrgcn.load(golden(wpath))
    assert model.variant == variant
    ev = np.load(golden(epath))
    x = ev["x"]
    assert rel_err(model(x), ev["logits"]) < 1e-5
    persons = ev["act_l1"].shape[0]  # official: the first sample's M persons; paddlevideo: first person
    for k in range(1, 11):
        logits, act = model.forward_block(x, k)
        assert act.shape[0] == x.shape[0] * x.shape[4]
        assert rel_err(act[:persons], ev[f"act_l{k}"]) < 1e-5, f"block {k}"
        assert rel_err(logits, ev["logits"]) < 1e-5


def test_reference_reproduces_golden(golden):
    """The reference itself is held to the golden vectors, so its agreement above means something."""
    for name in ("official-ucla", "pv-lightV2"):
        variant, wpath, epath = GOLDEN_SETS[name]
        w = dict(np.load(golden(wpath)))
        ev = np.load(golden(epath))
        V = w["l1.gcn1.PA"].shape[1]
        spec = ref.make_spec(variant, w["fc.bias"].shape[0], V, ev["x"].shape[4])
        logits, acts = ref.forward(spec, w, ev["x"])
        assert rel_err(logits, ev["logits"]) < 1e-5
        assert rel_err(acts[4][:ev["act_l5"].shape[0]], ev["act_l5"]) < 1e-5


# ================================================================ (c) preprocessing
def test_preprocess_example(golden):
    ex = np.load(golden("official/example_preprocess.npz"))
    raw = ex["raw"]
    out = ctrgcn.preprocess(raw)
    assert out.shape == ex["cropped"].shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ex["cropped"], rtol=1e-6, atol=1e-6 * np.abs(ex["cropped"]).max())
    pre = importlib.import_module("ctrgcn.preprocess")
    assert pre.valid_frames(raw) == int(ex["valid_frames"]) == 72
    mine, valid = ref.preprocess(raw)
    assert valid == 72
    np.testing.assert_allclose(out, mine, rtol=1e-6, atol=1e-6)


def test_preprocess_then_ntu_weights(golden):
    ex = np.load(golden("official/example_preprocess.npz"))
    model = ctrgcn.load(golden("official/ntu_weights.npz"))
    got = model(ctrgcn.preprocess(ex["raw"])[None])
    assert rel_err(got, ex["logits_ntu_weights"]) < 5e-3


@pytest.mark.parametrize("valid,T_raw", [(5, 20), (64, 64), (130, 300), (1, 3)])
def test_preprocess_against_reference(valid, T_raw):
    rng = np.random.default_rng(valid)
    raw = np.zeros((3, T_raw, 25, 2), np.float32)
    raw[:, :valid] = rng.standard_normal((3, valid, 25, 2))
    mine, v = ref.preprocess(raw)
    assert v == valid
    np.testing.assert_allclose(ctrgcn.preprocess(raw), mine, rtol=1e-5, atol=1e-6)


# ================================================================ (d) names, counts, files
@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_names_match_golden(variant, golden):
    model = ctrgcn.Model(variant)
    w = np.load(golden(GOLDEN_WEIGHTS[variant]))
    sd = model.state_dict()
    assert list(sd) == list(w.files)
    for k in w.files:
        assert sd[k].shape == w[k].shape, k
        assert sd[k].dtype == np.float32


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameter_counts(variant):
    n = ctrgcn.Model(variant).num_parameters()
    assert round(n / 1e6, 3) == PARAMS_M[variant]
    assert n == ref.num_parameters(ref.make_spec(variant))


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_round_trip(variant):
    _, _, src = calibrated(variant, "ntu")
    dst = ctrgcn.Model(variant, seed=123)
    sd = src.state_dict()
    dst.load_state_dict(sd)
    after = dst.state_dict()
    assert list(after) == list(sd)
    for k in sd:
        np.testing.assert_array_equal(after[k], sd[k], err_msg=k)
    x = np.random.default_rng(1).standard_normal((2, 3, 10, 25, 2)).astype(np.float32)
    np.testing.assert_array_equal(dst(x), src(x))
    # state_dict hands out copies
    sd["fc.bias"][:] = 1e6
    assert np.abs(src.state_dict()["fc.bias"]).max() < 1e5


def test_state_dict_accepts_official_extras():
    model = ctrgcn.Model("CTRGCN", graph="ucla", num_person=1, num_classes=10)
    sd = model.state_dict()
    sd["l1.gcn1.bn.num_batches_tracked"] = np.array(7, np.int64)
    sd["l1.gcn1.alpha"] = np.float32(0.5)  # a scalar alpha
    sd = {k: v.astype(np.float64) for k, v in sd.items()}
    model.load_state_dict(sd)
    assert model.state_dict()["l1.gcn1.alpha"].tolist() == [0.5]


@pytest.mark.parametrize("graph", ["ntu", "ucla", "custom"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_save_load_round_trip(variant, graph, tmp_path):
    spec, _, model = calibrated(variant, graph)
    path = tmp_path / "m.ctrgcn"
    model.save(path)
    back = ctrgcn.load(path)
    s0, s1 = model.spec, back.spec
    for key in ("variant", "num_classes", "num_joints", "num_person", "in_channels", "base_channel", "edges"):
        assert s1[key] == s0[key], key
    x = skeleton_input(np.random.default_rng(2), spec, 2, 13)
    np.testing.assert_array_equal(back(x), model(x))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[k], v, err_msg=k)
    model.save(str(path))  # over an existing file, str path
    np.testing.assert_array_equal(ctrgcn.load(str(path))(x), model(x))
    assert not [p for p in os.listdir(tmp_path) if p != "m.ctrgcn"], "temporary files left behind"


@pytest.mark.parametrize("name", list(GOLDEN_SETS))
def test_load_infers_spec(name, golden):
    variant, wpath, _ = GOLDEN_SETS[name]
    model = ctrgcn.load(golden(wpath))
    want = {"official-ntu": (60, 25, 2, 64), "official-ucla": (10, 20, 1, 64)}.get(
        name, (60, 25, 2, ref.VARIANT_TABLE[variant][0]))
    assert (model.variant, model.num_classes, model.num_joints, model.num_person, model.base_channel) == \
        (variant,) + want
    assert model.in_channels == 3
    assert model.spec["graph"] == ("ucla" if "ucla" in name else "ntu")


def test_load_npz_of_custom_graph_needs_graph(tmp_path):
    _, params, model = calibrated("CTRGCN_lightV1", "custom")
    path = tmp_path / "w.npz"
    np.savez(path, **model.state_dict())
    with pytest.raises(ctrgcn.InputError, match="graph"):
        ctrgcn.load(path)
    back = ctrgcn.load(path, graph=CUSTOM_EDGES)
    assert back.variant == "CTRGCN_lightV1" and back.num_joints == CUSTOM_V and back.num_person == 3
    x = np.random.default_rng(3).standard_normal((1, 3, 6, CUSTOM_V, 3)).astype(np.float32)
    np.testing.assert_array_equal(back(x), model(x))


def test_predict_and_proba():
    spec, _, model = calibrated("CTRGCN_lightV2", "ucla")
    x = skeleton_input(np.random.default_rng(4), spec, 4, 12)
    p = model.predict_proba(x)
    assert p.shape == (4, 10) and p.dtype == np.float32
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    pred = model.predict(x)
    assert pred.shape == (4,)
    np.testing.assert_array_equal(pred, np.argmax(model(x), axis=1))
    np.testing.assert_array_equal(pred, np.argmax(p, axis=1))


def test_repr_and_spec():
    m = ctrgcn.Model("CTRGCN_light", graph="ucla", num_person=1, num_classes=10)
    assert "CTRGCN_light" in repr(m)
    assert m.spec["graph"] == "ucla" and m.spec["num_joints"] == 20 and m.base_channel == 60


# ================================================================ (e) bad input
def test_error_hierarchy():
    assert issubclass(ctrgcn.InputError, ctrgcn.Error) and issubclass(ctrgcn.InputError, ValueError)
    assert issubclass(ctrgcn.FileError, ctrgcn.Error) and issubclass(ctrgcn.FileError, OSError)
    assert issubclass(ctrgcn.ResourceError, ctrgcn.Error)


@pytest.fixture(scope="module")
def ntu_model():
    return calibrated("CTRGCN_lightV2", "ntu")[2]


def _good(shape=(1, 3, 8, 25, 2)):
    return np.ones(shape, np.float32)


BAD_X = {
    "ndim4": (np.ones((3, 8, 25, 2), np.float32), r"5 dimensions"),
    "ndim6": (np.ones((1, 3, 8, 25, 2, 1), np.float32), r"5 dimensions"),
    "wrong-C": (np.ones((1, 2, 8, 25, 2), np.float32), r"(?i)coordinate|channel|C\b|shape"),
    "wrong-V": (np.ones((1, 3, 8, 24, 2), np.float32), r"(?i)joint|V\b|shape"),
    "wrong-M": (np.ones((1, 3, 8, 25, 3), np.float32), r"(?i)person|M\b|shape"),
    "object": (np.ones((1, 3, 8, 25, 2), object), r"dtype|real"),
    "str": (np.full((1, 3, 8, 25, 2), "a"), r"dtype|real"),
    "complex": (np.ones((1, 3, 8, 25, 2), np.complex64), r"dtype|real"),
    "nan": (np.where(np.arange(8)[None, None, :, None, None] == 3, np.nan, _good()).astype(np.float32),
            r"(?i)finite|nan"),
    "inf": (np.where(np.arange(8)[None, None, :, None, None] == 7, -np.inf, _good()).astype(np.float32),
            r"(?i)finite|inf"),
    "T=0": (np.ones((1, 3, 0, 25, 2), np.float32), r"(?i)frame|T\b|empty|shape"),
    "N=0": (np.ones((0, 3, 8, 25, 2), np.float32), r"(?i)sample|N\b|empty|shape"),
    "ragged": ([[1.0, 2.0], [3.0]], r"array|convertible|dimensions"),
}


@pytest.mark.parametrize("case", list(BAD_X))
def test_bad_input_raises(ntu_model, case):
    x, pattern = BAD_X[case]
    good = ntu_model(_good())
    for call in (ntu_model, ntu_model.predict, ntu_model.predict_proba, lambda a: ntu_model.forward_block(a, 3)):
        with pytest.raises(ctrgcn.InputError, match=pattern):
            call(x)
    np.testing.assert_array_equal(ntu_model(_good()), good)  # still alive, unchanged


@pytest.mark.parametrize("block", [0, 11, -1])  # 0: known bug, returns bare logits instead of raising
def test_bad_block_index(ntu_model, block):
    with pytest.raises(ctrgcn.InputError):
        ntu_model.forward_block(_good(), block)


BAD_MODEL_ARGS = {
    "unknown-variant": (dict(variant="CTRGCN_heavy"), "variant"),
    "empty-variant": (dict(variant=""), "variant"),
    "unknown-graph": (dict(graph="kinetics"), "graph"),
    "edge-out-of-range": (dict(graph=[(0, 30)], num_joints=25), r"(?i)joint|range|edge"),
    "edge-out-of-range-small": (dict(graph=[(0, 1), (1, 5)], num_joints=5), r"(?i)joint|range|edge"),
    "negative-joint": (dict(graph=[(-1, 2)]), r"(?i)joint|edge|>= 0"),
    "triples": (dict(graph=[(0, 1, 2)]), r"(?i)graph|pair|edge"),
    "zero-classes": (dict(graph="ntu", num_classes=0), r"(?i)class"),
    "zero-persons": (dict(graph="ntu", num_person=0), r"(?i)person"),
    "base-too-small": (dict(base_channel=3), r"base_channel"),
    "base-not-div-4": (dict(variant="CTRGCN", base_channel=10), r"base_channel"),
    # known bugs (model.py): these are accepted silently today
    "negative-base": (dict(base_channel=-8), r"base_channel"),  # becomes the preset 64
    "quadruples": (dict(graph=[(0, 1, 2, 3)]), r"(?i)graph|pair|edge"),  # read as edges (0, 1), (2, 3)
    "3d-edge-array": (dict(graph=np.zeros((2, 2, 2), int)), r"(?i)graph|pair|edge"),  # flattened to edges
    "ntu-with-20-joints": (dict(graph="ntu", num_joints=20), r"(?i)joint"),  # num_joints ignored, V stays 25
}


@pytest.mark.parametrize("case", list(BAD_MODEL_ARGS))
def test_bad_model_arguments(case):
    kwargs, pattern = BAD_MODEL_ARGS[case]
    with pytest.raises(ctrgcn.InputError, match=pattern):
        ctrgcn.Model(**kwargs)


@pytest.fixture
def fresh():
    _, _, src = calibrated("CTRGCN_light", "ucla")
    model = ctrgcn.Model("CTRGCN_light", graph="ucla", num_person=1, num_classes=10)
    model.load_state_dict(src.state_dict())
    x = np.random.default_rng(11).standard_normal((2, 3, 9, 20, 1)).astype(np.float32)
    return model, model.state_dict(), x, model(x)


def _bad_states(sd):
    missing = dict(sd)
    del missing["l4.gcn1.alpha"]
    unexpected = dict(sd)
    unexpected["l11.gcn1.alpha"] = np.ones(1, np.float32)
    shape = dict(sd)
    shape["l6.tcn1.branches.0.3.conv.weight"] = np.zeros((30, 30, 3, 1), np.float32)
    nan = dict(sd)
    nan["l9.gcn1.PA"] = sd["l9.gcn1.PA"].copy()
    nan["l9.gcn1.PA"][1, 2, 3] = np.nan
    inf = dict(sd)
    inf["fc.weight"] = np.full_like(sd["fc.weight"], np.inf)
    negvar = dict(sd)
    negvar["l2.tcn1.branches.0.1.running_var"] = -np.ones_like(sd["l2.tcn1.branches.0.1.running_var"])
    strings = dict(sd)
    strings["fc.bias"] = np.array(["x"] * sd["fc.bias"].size)
    # a bad tensor late in the table, after many good ones: nothing may have been copied
    late = {k: v + 1 for k, v in sd.items()}
    late["fc.bias"] = np.zeros(3, np.float32)
    return {"missing": (missing, "missing"), "unexpected": (unexpected, "unexpected"),
            "shape": (shape, "shape"), "nan": (nan, "finite"), "inf": (inf, "finite"),
            "negative-var": (negvar, "negative"), "str": (strings, "dtype|real"), "late": (late, "shape")}


@pytest.mark.parametrize("case", ["missing", "unexpected", "shape", "nan", "inf", "negative-var", "str", "late"])
def test_failed_load_state_dict_leaves_model_unchanged(fresh, case):
    model, before, x, logits = fresh
    state, pattern = _bad_states(before)[case]
    with pytest.raises(ctrgcn.InputError, match=pattern):
        model.load_state_dict(state)
    after = model.state_dict()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    np.testing.assert_array_equal(model(x), logits)


def test_load_state_dict_names_what_is_wrong(fresh):
    model, sd, _, _ = fresh
    bad = dict(sd)
    del bad["l4.gcn1.alpha"]
    bad["l4.gcn1.beta"] = np.ones(1)
    with pytest.raises(ctrgcn.InputError) as info:
        model.load_state_dict(bad)
    assert "l4.gcn1.alpha" in str(info.value) and "l4.gcn1.beta" in str(info.value)


# ---- files
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    _, _, model = calibrated("CTRGCN_lightV2", "ucla")
    path = tmp_path_factory.mktemp("saved") / "m.ctrgcn"
    model.save(path)
    return path, path.read_bytes()


def _write(tmp_path, data, name="f.ctrgcn"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("frac", [0.0, 0.001, 0.01, 0.1, 0.5, 0.9, 0.999, -1, -4, -5, 9, 12])
def test_truncated_file(saved, tmp_path, frac):
    _, data = saved
    cut = int(len(data) * frac) if isinstance(frac, float) else (len(data) + frac if frac < 0 else frac)
    p = _write(tmp_path, data[:cut])
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.load(p)


@pytest.mark.parametrize("where", [0.3, 0.6, 0.95])
def test_flipped_byte_fails_checksum(saved, tmp_path, where):
    _, data = saved
    buf = bytearray(data)
    buf[int(len(buf) * where)] ^= 0x10
    with pytest.raises(ctrgcn.InputError, match=r"(?i)crc|checksum|corrupt"):
        ctrgcn.load(_write(tmp_path, bytes(buf)))


@pytest.mark.parametrize("pos", [8, 9, 12, 20])
def test_flipped_header_byte(saved, tmp_path, pos):
    _, data = saved
    buf = bytearray(data)
    buf[pos] ^= 0x01
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.load(_write(tmp_path, bytes(buf)))


def test_flipped_crc_byte(saved, tmp_path):
    _, data = saved
    buf = bytearray(data)
    buf[-1] ^= 0x80
    with pytest.raises(ctrgcn.InputError, match=r"(?i)crc|checksum|corrupt"):
        ctrgcn.load(_write(tmp_path, bytes(buf)))


def test_wrong_magic(saved, tmp_path):
    _, data = saved
    for magic in (b"CTRGCN\x00\x09", b"XTRGCN\x00\x01", b"\x00" * 8):
        with pytest.raises(ctrgcn.InputError):
            ctrgcn.load(_write(tmp_path, magic + data[8:]))


def test_garbage_files(tmp_path):
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.load(_write(tmp_path, b""))
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.load(_write(tmp_path, b"hello world, not weights"))
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.load(_write(tmp_path, b"PK\x03\x04 broken zip", "w.npz"))
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.load(_write(tmp_path, b"", "w.npz"))


def test_npz_with_wrong_contents(tmp_path):
    sd = ctrgcn.Model("CTRGCN_lightV1", graph="ucla", num_person=1).state_dict()
    np.savez(tmp_path / "a.npz", **{k: v for k, v in sd.items() if k != "l4.gcn1.PA"})
    with pytest.raises(ctrgcn.InputError, match="missing"):
        ctrgcn.load(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", nothing=np.zeros(3))
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.load(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", **dict(sd, **{"l1.gcn1.PA": np.full((3, 20, 20), np.nan, np.float32)}))
    with pytest.raises(ctrgcn.InputError, match="finite"):
        ctrgcn.load(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.load(tmp_path / "d.npz")


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(ctrgcn.FileError) as info:
        ctrgcn.load(tmp_path / "nope.ctrgcn")
    assert "nope.ctrgcn" in str(info.value)
    with pytest.raises(ctrgcn.FileError):
        ctrgcn.load(tmp_path / "nope.npz")
    with pytest.raises(ctrgcn.FileError):
        ctrgcn.load(tmp_path)
    # the process is fine afterwards
    assert ctrgcn.Model("CTRGCN_light", graph="ucla", num_person=1)(np.ones((1, 3, 4, 20, 1))).shape == (1, 60)


# ================================================================ (f) failed saves
def test_save_to_unwritable_location(tmp_path):
    model = ctrgcn.Model("CTRGCN_lightV2", graph="ucla", num_person=1, num_classes=10)
    with pytest.raises(ctrgcn.FileError):
        model.save(tmp_path / "no" / "such" / "dir" / "m.ctrgcn")
    with pytest.raises(ctrgcn.FileError):
        model.save(tmp_path)  # a directory
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(ctrgcn.FileError):
        model.save(tmp_path / "file" / "m.ctrgcn")  # a file as a directory


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_save_into_read_only_directory_keeps_old_file(tmp_path):
    _, _, model = calibrated("CTRGCN_lightV2", "ucla")
    path = tmp_path / "m.ctrgcn"
    model.save(path)
    old = path.read_bytes()
    os.chmod(tmp_path, 0o500)
    try:
        with pytest.raises(ctrgcn.FileError):
            ctrgcn.Model("CTRGCN_lightV2", graph="ucla", num_person=1, num_classes=10, seed=5).save(path)
    finally:
        os.chmod(tmp_path, 0o700)
    assert path.read_bytes() == old


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses RLIMIT_FSIZE")
def test_failed_save_midway_keeps_old_file(tmp_path):
    """A write that fails partway (file size limit) raises FileError, leaves the existing file as it
    was and no temporary behind; run in a child process so the limit cannot touch pytest."""
    path = tmp_path / "m.ctrgcn"
    ctrgcn.Model("CTRGCN_light", graph="ucla", num_person=1, num_classes=10, seed=1).save(path)
    old = path.read_bytes()
    script = textwrap.dedent(f"""
        import resource, signal, sys
        import ctrgcn
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        m = ctrgcn.Model("CTRGCN_light", graph="ucla", num_person=1, num_classes=10, seed=2)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100000, hard))
        try:
            m.save({str(path)!r})
        except ctrgcn.FileError as exc:
            print("FileError", exc)
        except Exception as exc:
            print("other", type(exc).__name__, exc)
        else:
            print("saved")
        print("alive")
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(ctrgcn.__file__))]
                                                      + sys.path))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("FileError"), out.stdout + out.stderr
    assert "alive" in out.stdout
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["m.ctrgcn"], "temporary file left behind"
