/* h5model_attrs.h - the /config and /provenance attribute writers shared by the FP32
 * container (h5model.c) and the quantized one (h5qmodel.c), so both files carry one
 * attribute list. io/-internal (includes <hdf5.h>); readers stay in h5model.c. */
#ifndef UPQ_H5MODEL_ATTRS_H
#define UPQ_H5MODEL_ATTRS_H

#include <hdf5.h>

#include "h5model.h"
#include "model.h"

/* Writes every tfm_config field as an attribute of group g; `file` names errors. */
int h5m_config_put(hid_t g, const tfm_config *c, const char *file);
/* Writes the provenance record as attributes of group g. */
int h5m_provenance_put(hid_t g, const h5m_provenance *p, const char *file);

#endif
