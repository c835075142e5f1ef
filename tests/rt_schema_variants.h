/* Other builds of the `rt` test application (each in its own file, as in another program). */
#ifndef RT_SCHEMA_VARIANTS_H
#define RT_SCHEMA_VARIANTS_H
#include <messenger.h>
const msgr_app *rt_v2_app(void); /* M2 laid out differently under the same wire id */
const msgr_app *rt_v3_app(void); /* the same messages plus a new one */
const msgr_app *rt_v4_app(void); /* a field of M2 of another type, same size and offset */
const msgr_app *rt_v5_app(void); /* M1 under another wire id */
const msgr_app *rt_v6_app(void); /* M6 with a field added at its end */
const msgr_app *rt_v7_app(void); /* M6 with a field renamed */
#endif
