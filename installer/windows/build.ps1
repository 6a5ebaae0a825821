# Build Clarke Desktop for Windows x64 (CPU or CUDA) and its Inno Setup installer.
# NOT run in this repository's CI (Linux only): this is the documented recipe, see docs/it-guide.md.
#
# Prerequisites on the build machine (connected, not the clinic workstation):
#   Python 3.11 x64, Git, Visual Studio 2022 Build Tools (C++ workload, CMake), Inno Setup 6 (iscc)
#   For -Cuda: NVIDIA CUDA Toolkit 12.x (nvcc on PATH, CUDA_PATH set) and cuDNN 9 for onnxruntime-gpu
#
#   powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1            # CPU build
#   powershell -ExecutionPolicy Bypass -File installer\windows\build.ps1 -Cuda      # CUDA build
param([switch]$Cuda)
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")

py -3.11 -m venv .venv-win
$py = ".\.venv-win\Scripts\python.exe"
& $py -m pip install --upgrade pip
& $py -m pip install -e ".[package]"          # pinned deps, CPU llama-cpp-python and onnxruntime

if ($Cuda) {
  # llama-cpp-python: rebuild from source with the CUDA backend. pip caches wheels by version, not by
  # build flags, so --no-cache-dir is required or the cached CPU wheel comes back.
  $env:CMAKE_ARGS = "-DGGML_CUDA=on"
  $env:FORCE_CMAKE = "1"
  & $py -m pip install --no-cache-dir --force-reinstall --no-deps "llama-cpp-python==0.3.36"
  # onnxruntime-gpu replaces onnxruntime (never install both). <=1.26 needs CUDA 12 + cuDNN 9,
  # >=1.27 needs CUDA 13: choose the one matching the driver/toolkit the hospital standardises on.
  & $py -m pip uninstall -y onnxruntime
  & $py -m pip install "onnxruntime-gpu==1.26.*"
  & $py -c "import llama_cpp; assert llama_cpp.llama_supports_gpu_offload(), 'llama.cpp built without CUDA'"
}

& $py -m PyInstaller --noconfirm --clean --distpath dist --workpath build\pyinstaller installer\clarke-desktop.spec
& dist\clarke-desktop\clarke-desktop.exe --version
& dist\clarke-desktop\clarke-desktop.exe doctor
$version = (& dist\clarke-desktop\clarke-desktop.exe --version).Split(" ")[-1]
iscc "/DAppVersion=$version" installer\windows\clarke-desktop.iss
Write-Host "Installer: dist\ClarkeDesktop-$version-Setup.exe"
