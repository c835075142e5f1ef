/* The JSON-RPC 2.0 example's shared definitions: jansson and the error codes. */
#ifndef MSGR_EXAMPLE_JSONRPC_H
#define MSGR_EXAMPLE_JSONRPC_H

#include <jansson.h>

/* The specification's codes. */
#define JSONRPC_PARSE_ERROR -32700
#define JSONRPC_INVALID_REQUEST -32600
#define JSONRPC_METHOD_NOT_FOUND -32601
#define JSONRPC_INVALID_PARAMS -32602
#define JSONRPC_INTERNAL_ERROR -32603
/* This application's own error (outside the range the specification reserves). */
#define JSONRPC_APP_DIVISION_BY_ZERO 1

#endif
