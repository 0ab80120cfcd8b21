#!/bin/bash
# Build PyCUDA from source on the device machine (no wheels exist) so the CUDA module's
# PyCUDA backend can be tested there: needs pyc/ with the pycuda sdist and wheels of
# pytools, platformdirs, siphash24 and mako next to the working directory.
set -x
NVCC=$(which nvcc); CUDA_ROOT=$(dirname $(dirname $(readlink -f $NVCC)))
echo "CUDA_ROOT=$CUDA_ROOT"; ls $CUDA_ROOT/include/cuda.h $CUDA_ROOT/lib64/stubs 2>&1 | head -3
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/pysite pyc/*.whl || exit 1
cd /tmp && tar xzf $OLDPWD/pyc/pycuda-2026.1.tar.gz && cd pycuda-2026.1 || exit 1
python3 configure.py --cuda-root=$CUDA_ROOT > /dev/null || exit 1
export PYTHONPATH=/tmp/pysite:$PYTHONPATH
timeout 300 python3 setup.py -q build_ext -j 16 --inplace > /tmp/pycuda_build.log 2>&1; rc=$?
tail -5 /tmp/pycuda_build.log; echo "build rc=$rc"; exit $rc
