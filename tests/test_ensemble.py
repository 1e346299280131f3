"""ctrgcn.Ensemble: the four-stream fusion on real NW-UCLA clips equals summing each stream's model
on the feeder's own stream of those clips."""
import numpy as np
import pytest

import ctrgcn
from ctrgcn.data import NWUCLA

STREAMS = ("joint", "bone", "motion", "bone_motion")
CLIPS = ["a01_s01_e00_v03", "a02_s05_e01_v03", "a06_s03_e02_v03", "a12_s08_e00_v03"]


def test_four_streams_on_nwucla(ucla_subset):
    models = [ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1, seed=s) for s in range(4)]
    models[2].classes = list(ctrgcn.NWUCLA_CLASSES)
    root = ucla_subset(CLIPS)
    idx = [0, 1, 2, 3]
    x = NWUCLA(root, split="val").batch(idx)[0]
    per_stream = [m(NWUCLA(root, split="val", modality=s).batch(idx)[0]).astype(np.float64)
                  for m, s in zip(models, STREAMS)]
    for weights in (None, [0.6, 0.6, 0.4, 0.4]):
        ens = ctrgcn.Ensemble(models, STREAMS, weights)
        w = weights or [1.0] * 4
        want = sum(wi * s for wi, s in zip(w, per_stream))
        np.testing.assert_allclose(ens.scores(x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
        p = ens.predict_proba(x)
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
        np.testing.assert_array_equal(ens.predict(x), want.argmax(axis=1))
        np.testing.assert_array_equal(np.argmax(p, axis=1), want.argmax(axis=1))
    assert ens.classes == list(ctrgcn.NWUCLA_CLASSES) and ens.num_classes == 10
    # one model alone is that model
    one = ctrgcn.Ensemble(models[:1], ["joint"])
    np.testing.assert_allclose(one.predict_proba(x), models[0].predict_proba(x), rtol=1e-5, atol=1e-7)


def test_bad_ensembles():
    a = ctrgcn.Model("CTRGCN_lightV2", num_classes=10, graph="ucla", num_person=1)
    b = ctrgcn.Model("CTRGCN_lightV2", num_classes=60, graph="ntu", num_person=2)
    for args in (([], []), ([a, b], ["joint", "bone"]), ([a], ["joint", "bone"]), ([a], ["speed"]),
                 ([a, a], ["joint", "bone"], [1.0]), ([a], ["joint"], [float("nan")])):
        with pytest.raises(ctrgcn.InputError):
            ctrgcn.Ensemble(*args)
    with pytest.raises(ctrgcn.InputError):
        ctrgcn.Ensemble([a], ["joint"]).scores(np.zeros((3, 52, 20, 1)))


def test_shipped_streams_as_one_ensemble(shared, capsys):
    """ctrgcn.pretrained_ensemble() fuses the shipped NW-UCLA streams: on a real clip its scores are the
    sum of each shipped model on that clip's own stream as the C feeder prepares it (the ensemble
    derives the streams from the prepared joints itself), and `predict --ensemble` names its top class."""
    import json
    from ctrgcn.commands.predict import main as predict_main
    from ctrgcn.inputs import prepare, read_recordings, to_tmvc
    streams = [s for s in STREAMS if f"nwucla_ctrgcn_{s}" in ctrgcn.pretrained()]
    if len(streams) < 2:
        pytest.skip("fewer than two NW-UCLA streams are shipped")
    clip = shared / "data" / "nw-ucla" / "all_sqe" / "a06_s03_e02_v03.json"
    if not clip.exists():
        pytest.skip("NW-UCLA data not found in ../shared")
    ens = ctrgcn.pretrained_ensemble()
    assert ens.modalities == streams and ens.weights == [1.0] * len(streams)
    assert ens.classes == list(ctrgcn.NWUCLA_CLASSES)
    tmvc = to_tmvc(read_recordings(str(clip))[0][1], 3, 20, "clip")
    want = sum(m(prepare(m, tmvc, s)[None]).astype(np.float64) for m, s in zip(ens.models, streams))
    x = prepare(ens.models[0], tmvc, "joint")[None]
    got = ens.scores(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert predict_main([str(clip), "--ensemble", "--json", "--top-k", "2"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"]
    assert top[0]["index"] == int(want.argmax()) and top[0]["class"] == ctrgcn.NWUCLA_CLASSES[int(want.argmax())]
    # each stream's tuned-recipe model where one is shipped; tuned=False keeps the official recipe's
    official = ctrgcn.pretrained_ensemble(tuned=False)
    for k, s in enumerate(streams):
        aug = f"nwucla_ctrgcn_{s}_aug" in ctrgcn.pretrained()
        want_t = ctrgcn.pretrained(f"nwucla_ctrgcn_{s}_aug" if aug else f"nwucla_ctrgcn_{s}")(x)
        np.testing.assert_array_equal(ens.models[k](x), want_t)
        np.testing.assert_array_equal(official.models[k](x), ctrgcn.pretrained(f"nwucla_ctrgcn_{s}")(x))
    weighted = ctrgcn.pretrained_ensemble(weights=[2.0] + [1.0] * (len(streams) - 1))
    assert weighted.weights[0] == 2.0
    for bad in (dict(family="ntu60_ctrgcn"), dict(weights=[1.0] * (len(streams) + 1))):
        with pytest.raises(ctrgcn.InputError):
            ctrgcn.pretrained_ensemble(**bad)
    with pytest.raises(ctrgcn.InputError, match="takes joints"):
        predict_main([str(clip), "--ensemble", "--modality", "bone"])
