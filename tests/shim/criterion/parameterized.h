/* Parameterized tests for the TSan stand-in (see criterion.h in this directory). */
#ifndef MSGR_CRITERION_SHIM_PARAMETERIZED_H
#define MSGR_CRITERION_SHIM_PARAMETERIZED_H

#include "criterion.h"

#define cr_make_param_array(type, arr, n) ((msgr_shim_params){(arr), sizeof(type), (n)})

#define ParameterizedTestParameters(suite, name)                                              \
    static msgr_shim_params suite##_##name##_params(void)

#define ParameterizedTest(param, suite, name, ...)                                            \
    static void suite##_##name##_pimpl(param);                                                 \
    static void suite##_##name##_pwrap(void *p) { suite##_##name##_pimpl(p); }                 \
    static msgr_shim_test msgr_shim_t_##suite##_##name = {                                     \
        .sname = #suite, .tname = #name, .pfn = suite##_##name##_pwrap,                         \
        .params = suite##_##name##_params, __VA_ARGS__};                                       \
    __attribute__((constructor)) static void msgr_shim_reg_##suite##_##name(void)             \
    {                                                                                          \
        msgr_shim_add(&msgr_shim_t_##suite##_##name, 0);                                       \
    }                                                                                          \
    static void suite##_##name##_pimpl(param)

#endif
