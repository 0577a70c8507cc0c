"""What this machine offers the LLM and whether the installed llama-cpp-python uses it.

Prints the CPU's vector extensions next to those llama.cpp was compiled with, the GPUs
``nvidia-smi`` sees next to whether the build can offload to one, and the command that
rebuilds llama-cpp-python when the two disagree. Loads no model.

    python scripts/device_check.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

BASE = "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF"
REBUILD = (
    'CMAKE_ARGS="{args}" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) '
    ".venv/bin/pip install --force-reinstall --no-deps --no-cache-dir "
    "--no-binary llama-cpp-python llama-cpp-python==0.3.36"
)


def cpu_flags() -> tuple[str, set[str]]:
    name, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text("utf-8").splitlines():
            if line.startswith("model name") and name == "unknown CPU":
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return name, flags


def physical_cores() -> int | None:
    """Distinct (physical id, core id) pairs in /proc/cpuinfo."""
    cores, phys = set(), "0"
    try:
        for line in Path("/proc/cpuinfo").read_text("utf-8").splitlines():
            if line.startswith("physical id"):
                phys = line.split(":")[1].strip()
            elif line.startswith("core id"):
                cores.add((phys, line.split(":")[1].strip()))
    except OSError:
        return None
    return len(cores) or None


def run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def main() -> int:
    name, flags = cpu_flags()
    cores = physical_cores()
    print(f"CPU: {name}; {os.cpu_count()} logical CPUs, {cores or '?'} physical cores")
    wanted = {
        "avx2": "AVX2",
        "avx512f": "AVX512",
        "avx512_vnni": "AVX512_VNNI",
        "avx512_bf16": "AVX512_BF16",
        "avx512vbmi": "AVX512_VBMI",
        "avx_vnni": "AVX_VNNI",
    }
    print("  CPU has:", " ".join(v for k, v in wanted.items() if k in flags) or "none of AVX2/AVX-512")
    try:
        import llama_cpp
    except ImportError:
        print("llama-cpp-python is not installed: run `make install`")
        return 1
    info = llama_cpp.llama_print_system_info().decode()
    built = {part.split("=")[0].strip() for part in info.replace("|", "\n").splitlines() if "= 1" in part}
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    print(f"llama-cpp-python {llama_cpp.__version__}: {info.strip()}")
    print(f"  GPU offload compiled in: {offload}")
    missing = [v for k, v in wanted.items() if k in flags and v not in built]
    gpus = (
        run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"])
        if shutil.which("nvidia-smi")
        else ""
    )
    print(f"GPU: {gpus or 'none found (no nvidia-smi or no device)'}")
    nvcc = run(["nvcc", "--version"]).splitlines()[-1:] if shutil.which("nvcc") else []
    print(f"CUDA toolkit: {nvcc[0] if nvcc else 'nvcc not found'}")
    print()
    if gpus and not offload:
        print("A GPU is present but this build cannot use it. Rebuild with CUDA (needs nvcc), then")
        print("set FONTI_LLM_N_GPU_LAYERS=-1 (all layers):")
        print("  " + REBUILD.format(args="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=native " + BASE))
    elif gpus:
        print("GPU build: set FONTI_LLM_N_GPU_LAYERS=-1 to offload every layer.")
    elif missing:
        extra = " ".join(f"-DGGML_{v}=ON" for v in missing)
        print(f"The CPU has {' '.join(missing)} but this build does not use it; prompt processing ran")
        print(
            "~1.5-2x faster with AVX-512 on the reference machine. Rebuild (or `make install` on a new venv):"
        )
        print("  " + REBUILD.format(args=f"{BASE} {extra}"))
    else:
        print("The build uses every vector extension this CPU offers.")
    if cores:
        print(
            f"Threads: FONTI_LLM_N_THREADS_BATCH={cores}; FONTI_LLM_N_THREADS={cores} on a dedicated "
            "machine, 1 when other busy processes share the cores."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
