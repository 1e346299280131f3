"""Build and run the fuzzers.

    python tests/fuzz/run_fuzz.py c skeleton -runs=1000000        # a C harness (libFuzzer, ASan+UBSan)
    python tests/fuzz/run_fuzz.py c model_file -max_total_time=60
    python tests/fuzz/run_fuzz.py py weights_npz -runs=100000     # a Python reader (atheris)
    python tests/fuzz/run_fuzz.py list

C harnesses (tests/fuzz/fuzz_*.c) are built with clang -fsanitize=fuzzer,address,undefined against the
C core (build/fuzz/, rebuilt when a source changes); Python targets are the functions of
tests/fuzz/targets.py run under atheris with the ctrgcn package instrumented. Each run starts from
the seeds of tests/fuzz/fuzz_seeds.py (copied into build/fuzz/corpus/<target>, which keeps what the
fuzzer adds), writes crashes into build/fuzz/artifacts/ and prints libFuzzer's final statistics
(stat::number_of_executed_units is the execution count reported in tests/fuzz/README.md)."""
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = ROOT / "build" / "fuzz"
C_HARNESSES = {"skeleton": "fuzz_skeleton.c", "model_file": "fuzz_model_file.c"}
# the C harness each seed set feeds
C_SEEDS = {"skeleton": "ntu_skeleton", "model_file": "weights_ctrgcn"}
MAX_LEN = {"skeleton": 8192, "model_file": 65536}
LIBFUZZER_DEFAULTS = ["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"]


def clang():
    for name in ("clang", "clang-16", "clang-15", "clang-14"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _sources():
    return sorted(glob.glob(str(ROOT / "csrc" / "core" / "*.c")) + glob.glob(str(ROOT / "csrc" / "layers" / "*.c"))
                  + glob.glob(str(ROOT / "csrc" / "backends" / "*.c"))
                  + glob.glob(str(ROOT / "csrc" / "backends" / "cpu" / "*.c"))
                  + glob.glob(str(ROOT / "csrc" / "data" / "*.c")))


def build_c(name):
    """Path of the built harness; an OSError saying why when clang, its fuzzer runtime or OpenBLAS is
    missing. The core is compiled once (build/fuzz/obj-<hash of sources and flags>) for all harnesses."""
    cc = clang()
    if cc is None:
        raise OSError("clang not found (Debian: apt-get install clang libclang-rt-dev libomp-dev)")
    try:
        import scipy_openblas32 as sob
    except ImportError:
        raise OSError("scipy-openblas32 not installed") from None
    flags = ["-std=c11", "-O1", "-g", "-fopenmp", "-fsanitize=fuzzer-no-link,address,undefined",
             "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-D_GNU_SOURCE", "-DCTRGCN_BLAS_SCIPY=1",
             f"-I{ROOT / 'csrc' / 'include'}", f"-I{ROOT / 'csrc'}", f"-I{sob.get_include_dir()}"]
    key = hashlib.sha256("\0".join(flags + [cc]).encode())
    for s in _sources() + sorted(glob.glob(str(ROOT / "csrc" / "**" / "*.h"), recursive=True)):
        key.update(s.encode() + Path(s).read_bytes())
    objs = BUILD / f"obj-{key.hexdigest()[:12]}"
    if not (objs / "done").exists():
        shutil.rmtree(objs, ignore_errors=True)
        for old in BUILD.glob("obj-*"):
            shutil.rmtree(old, ignore_errors=True)
        objs.mkdir(parents=True)
        for i, src in enumerate(_sources()):  # numbered: two sources may share a file name
            done = subprocess.run([cc, *flags, "-c", src, "-o", str(objs / f"{i:03d}_{Path(src).stem}.o")],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise OSError(f"compiling {src} failed:\n{done.stderr[-3000:]}")
        (objs / "done").write_text("")
    harness = HERE / C_HARNESSES[name]
    exe = objs / f"fuzz_{name}-{hashlib.sha256(harness.read_bytes()).hexdigest()[:8]}"
    if not exe.exists():
        cmd = [cc, *flags, "-fsanitize=fuzzer", str(harness), *sorted(map(str, objs.glob("*.o"))), "-o", str(exe),
               f"-L{sob.get_lib_dir()}", f"-l{sob.get_library()}", f"-Wl,-rpath,{sob.get_lib_dir()}", "-lm"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise OSError(f"building {name} failed:\n{done.stderr[-3000:]}")
    return exe


def corpus(target, c_harness=None, root=None):
    """build/fuzz/corpus/<target>, seeded once from fuzz_seeds (the model-file harness takes files
    without their CRC)."""
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    import fuzz_seeds
    d = Path(root or BUILD / "corpus") / (c_harness or target)
    if not d.is_dir() or not any(d.iterdir()):
        d.mkdir(parents=True, exist_ok=True)
        if target == "every_target":  # each target's seeds behind the byte that picks it
            import targets
            seeds = []
            for i, name in enumerate(sorted(targets.TARGETS)):
                seeds += [bytes([i]) + s for s in fuzz_seeds.synthetic()[name]]
        else:
            seeds = fuzz_seeds.synthetic()[target]
            seeds += [p.read_bytes() for p in fuzz_seeds.real().get(target, [])]
        if c_harness:  # the C harnesses run on short inputs (MAX_LEN), fast
            seeds = [s for s in seeds if len(s) <= MAX_LEN[c_harness]]
        for i, data in enumerate(seeds):
            (d / f"seed_{i}").write_bytes(data[:-4] if c_harness == "model_file" else data)
    return d


def run_c(name, args, artifacts=None, corpus_dir=True, corpus_root=None, **kw):
    """Run a C harness: fuzzing from its corpus, or (corpus_dir=False, files in args) replaying inputs.
    stdout and stderr are merged, so captured output holds libFuzzer's statistics."""
    exe = build_c(name)
    art = Path(artifacts or BUILD / "artifacts" / name)
    art.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1",
               LSAN_OPTIONS=f"suppressions={ROOT / 'tests' / 'c' / 'lsan.supp'}")
    cmd = [str(exe), *LIBFUZZER_DEFAULTS, f"-max_len={MAX_LEN[name]}", f"-artifact_prefix={art}/", *args]
    if corpus_dir:
        cmd.append(str(corpus(C_SEEDS[name], name, corpus_root)))
    return subprocess.run(cmd, env=env, **_merged(kw))


def _merged(kw):
    if kw.get("capture_output"):
        kw = dict(kw, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        del kw["capture_output"]
    return kw


def run_py(target, args, artifacts=None, corpus_root=None, **kw):
    art = Path(artifacts or BUILD / "artifacts" / target)
    art.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(HERE / "fuzz_python.py"), target, *LIBFUZZER_DEFAULTS, f"-artifact_prefix={art}/",
           *args, str(corpus(target, None, corpus_root))]
    with tempfile.TemporaryDirectory(prefix="ctrgcn-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE)]),
                   CTRGCN_FUZZ_TMP=d)
        return subprocess.run(cmd, env=env, **_merged(kw))


def executions(output):
    """stat::number_of_executed_units from libFuzzer's final statistics (None when absent)."""
    for line in output.splitlines():
        if line.startswith("stat::number_of_executed_units:"):
            return int(line.split(":")[-1])
    return None


def campaign(c_runs=1_000_000, py_runs=100_000, only=None):
    """Every harness in turn (one process at a time), each for its run count; logs in
    build/fuzz/logs/, one summary line per harness appended to build/fuzz/summary.txt."""
    sys.path[:0] = [str(HERE), str(ROOT)]
    import targets
    logs = BUILD / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    jobs = [("c", n, c_runs) for n in C_HARNESSES] + [("py", n, py_runs) for n in targets.TARGETS]
    for kind, name, runs in jobs:
        if only and name not in only:
            continue
        log = logs / f"{kind}_{name}.log"
        with open(log, "w") as f:
            done = (run_c if kind == "c" else run_py)(name, [f"-runs={runs}"], stdout=f, stderr=subprocess.STDOUT)
        text = log.read_text(errors="replace")
        line = (f"{kind} {name}: rc={done.returncode} executions={executions(text)} "
                f"findings={len(list((BUILD / 'artifacts' / name).glob('*')))}")
        with open(BUILD / "summary.txt", "a") as f:
            f.write(line + "\n")
        print(line, flush=True)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "campaign":
        campaign(only=sys.argv[2:] or None)
        sys.exit(0)
    if len(sys.argv) < 2 or sys.argv[1] == "list":
        sys.path[:0] = [str(HERE), str(ROOT)]
        import targets
        print("c:", " ".join(C_HARNESSES))
        print("py:", " ".join(targets.TARGETS))
        sys.exit(0)
    kind, name, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    done = (run_c if kind == "c" else run_py)(name, rest)
    sys.exit(done.returncode)
