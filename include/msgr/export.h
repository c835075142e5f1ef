/* messenger: which declarations are the library's interface.
 *
 * MSGR_API marks every function the library exports. The library is built with hidden
 * visibility by default, so a function without it (an internal one) is not in the shared
 * library's symbol table, and a program cannot come to depend on it.
 */
#ifndef MSGR_EXPORT_H
#define MSGR_EXPORT_H

#if defined(_WIN32) && defined(MSGR_BUILDING_DLL)
#define MSGR_API __declspec(dllexport)
#elif defined(_WIN32) && defined(MSGR_USING_DLL)
#define MSGR_API __declspec(dllimport)
#elif defined(__GNUC__) && !defined(_WIN32)
#define MSGR_API __attribute__((visibility("default")))
#else
#define MSGR_API
#endif

#endif
