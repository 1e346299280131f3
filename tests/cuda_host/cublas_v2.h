/* Shadows the CUDA toolkit header of this name in the host emulation build (see cuda_host.h). */
#include "cuda_host.h"
