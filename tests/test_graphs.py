"""Built-in skeleton layouts: their descriptions, the networks built on them (against the NumPy
reference, 2-D input with and without confidence) and the bone modality they define."""
import zlib

import numpy as np
import pytest

import ctrgcn
import reference as ref
from ctrgcn import _core
from ctrgcn.data import NWUCLA, bone, modality

NEW = ("coco17", "openpose18", "mediapipe33")


def test_graphs_are_listed_with_names_and_trees():
    assert list(ctrgcn.graphs) == ["ntu", "ucla", "coco17", "openpose18", "mediapipe33"]
    for name, g in ctrgcn.graphs.items():
        assert g.name == name
        assert len(set(g.joints)) == g.num_joints  # names are unique
        children = [c for c, _ in g.bones]
        assert sorted(children + [g.root]) == list(range(g.num_joints))  # one parent per joint but the root
        # every joint reaches the root: the bones form one tree
        parent = g.parents()
        for v in range(g.num_joints):
            seen = set()
            while v != g.root:
                assert v not in seen
                seen.add(v)
                v = int(parent[v])
    assert [ctrgcn.graphs[n].num_joints for n in NEW] == [17, 18, 33]
    assert all(ctrgcn.graphs[n].planar for n in NEW) and not ctrgcn.graphs["ntu"].planar
    assert ctrgcn.graphs["coco17"].joints[9] == "left_wrist" and ctrgcn.graphs["openpose18"].joints[1] == "neck"
    assert ctrgcn.graphs["mediapipe33"].joints[32] == "right_foot_index"


@pytest.mark.parametrize("name", ["ntu", "ucla"])
def test_reference_layouts_match_the_core(name):
    """The bones of ntu / ucla are the C core's adjacency edges (spec.c) and its bone parents (augment.c)."""
    g = ctrgcn.graphs[name]
    core_edges = _core.preset_spec("CTRGCN", name, 1, 1, 3)["edges"]
    assert sorted(map(tuple, core_edges)) == sorted(g.bones)
    x = np.random.default_rng(1).standard_normal((3, 9, g.num_joints, 2)).astype(np.float32)
    want = x - x[:, :, g.parents()]
    np.testing.assert_array_equal(bone(x, name), want)


def test_ucla_bones_match_the_c_feeder(ucla_subset):
    """NWUCLA's bone stream (C parents) equals the joint stream's bones by the description."""
    root = ucla_subset(["a01_s01_e00_v03", "a05_s02_e01_v03"])
    joint = NWUCLA(root, split="val", modality="joint").batch([0, 1])[0]
    bones = NWUCLA(root, split="val", modality="bone").batch([0, 1])[0]
    np.testing.assert_allclose(bones, modality(joint, "bone", "ucla"), atol=1e-6)


@pytest.mark.parametrize("name", NEW)
def test_bone_modality_of_new_graphs(name):
    g = ctrgcn.graphs[name]
    x = np.random.default_rng(2).standard_normal((2, 5, g.num_joints, 1)).astype(np.float32)
    b = bone(x, name)
    for c, p in g.bones:
        np.testing.assert_array_equal(b[:, :, c], x[:, :, c] - x[:, :, p])
    assert np.all(b[:, :, g.root] == 0)
    np.testing.assert_array_equal(bone(x), b)  # the joint count alone tells the layout
    bm = modality(x, "bone_motion", g.edges)  # an edge list gives the same bones
    np.testing.assert_allclose(bm[:, :-1], b[:, 1:] - b[:, :-1], atol=1e-6)
    with pytest.raises(ctrgcn.InputError):
        bone(x, "ntu")


NETWORK_CASES = [("coco17", 2, "CTRGCN_lightV2"), ("coco17", 3, "CTRGCN"), ("openpose18", 2, "CTRGCN"),
                 ("openpose18", 3, "CTRGCN_lightV2"), ("mediapipe33", 2, "CTRGCN_lightV2"), ("mediapipe33", 3, "CTRGCN")]


@pytest.mark.parametrize("name,channels,variant", NETWORK_CASES)
def test_networks_on_new_graphs_match_reference(name, channels, variant):
    """Networks on 2-D keypoints ((x, y) or (x, y, confidence)) agree with the independent float64
    reference built from the graph's bones."""
    g = ctrgcn.graphs[name]
    base = {"CTRGCN_lightV2": 14, "CTRGCN": 16}[variant]
    model = ctrgcn.Model(variant, num_classes=5, graph=name, num_person=2, in_channels=channels, base_channel=base)
    assert model.spec["graph"] == name and model.in_channels == channels
    spec = ref.make_spec(variant, 5, g.num_joints, 2, channels, base)
    rng = np.random.default_rng(zlib.crc32(f"{name}/{channels}/{variant}".encode()))
    A = ref.graph_A(g.bones, g.num_joints)
    assert dict(model.tensor_shapes()) == dict(ref.param_shapes(spec))
    np.testing.assert_allclose(model.state_dict()["l1.gcn1.PA"], A, atol=1e-7)
    params = ref.random_params(spec, rng, A)
    params = ref.calibrate(spec, params, rng.standard_normal((2, channels, 16, g.num_joints, 2)))  # sane scales
    model.load_state_dict({k: v.astype(np.float32) for k, v in params.items()})
    params = {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}
    x = rng.standard_normal((2, channels, 11, g.num_joints, 2)).astype(np.float32)
    want, _ = ref.forward(spec, params, x)
    got = model(x)
    assert np.abs(got - want).max() / np.abs(want).max() < 1e-4


def test_new_graph_survives_save_and_training(tmp_path):
    model = ctrgcn.Model("CTRGCN_lightV2", num_classes=4, graph="coco17", num_person=1, in_channels=2, base_channel=16)
    x = np.random.default_rng(3).standard_normal((4, 2, 12, 17, 1)).astype(np.float32)
    trainer = model.trainer(threads=1)
    loss0, _ = trainer.step(x, np.eye(4, dtype=np.float32), lr=0.05)
    for _ in range(3):
        loss, _ = trainer.step(x, np.eye(4, dtype=np.float32), lr=0.05)
    assert np.isfinite(loss0) and loss < loss0
    trainer.sync()
    model.save(tmp_path / "coco.ctrgcn")
    back = ctrgcn.load(tmp_path / "coco.ctrgcn")
    assert back.spec["graph"] == "coco17" and back.in_channels == 2
    np.testing.assert_array_equal(back(x), model(x))
    # an edge list equal to a built-in graph's bones is that graph
    same = ctrgcn.Model("CTRGCN_lightV2", num_classes=4, graph=ctrgcn.graphs["openpose18"].edges.tolist(), num_person=1)
    assert ctrgcn.Model.from_spec(same.spec).spec["graph"] == "openpose18"


def test_presets_keep_the_official_relation_width():
    """Three input channels keep R = 8 (the official rule); two, which it would give 0, get 8 too."""
    for C in (2, 3):
        layout = ctrgcn.Model("CTRGCN", num_classes=3, graph="coco17", num_person=1, in_channels=C).block_layout()
        assert layout[0]["R"] == 8 and layout[1]["R"] == 64 // 8
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.Model("CTRGCN", graph="kinect")
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.Model("CTRGCN", graph="coco17", num_joints=18)
