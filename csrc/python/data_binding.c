/* Data-preparation functions of ctrgcn._core (skeleton readers, augmentation, batching). */
#include "python/binding.h"

PyMethodDef ctrgcn_data_methods[] = {{NULL, NULL, 0, NULL}};
