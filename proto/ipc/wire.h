/* Message types and field tags spoken between edgehub's processes */
#pragma once

/*
 * Every request gets exactly one reply on the same connection. A reply
 * carries WIRE_STATUS (u32: 0 = success, else a positive errno naming the
 * outcome) and, on failure, WIRE_ERROR (human text).
 */
enum {
        /* broker-plugin -> auth-cache: check a device's CONNECT */
        WIRE_AUTH_REQUEST = 1,     /* CLIENT_ID, USERNAME, [PASSWORD] [CERTIFICATE] */
        WIRE_AUTH_REPLY,           /* STATUS [ERROR] [IDENTITY]; EACCES refused, ENOENT unknown */
        /* hub-store -> auth-cache: the key to mint an upstream token */
        WIRE_KEY_REQUEST,          /* IDENTITY */
        WIRE_KEY_REPLY,            /* STATUS [KEY] [IDENTITY]; ENOENT unknown or removed. IDENTITY instead of KEY:
                                      sign as that identity ({edge}/$edgeHub, on behalf of an X.509 child) */
        /* The body of an ingest-log record (proto/store/ingest-log.h); no longer sent over a socket */
        WIRE_STORE_REQUEST,        /* IDENTITY, PROPERTIES, PAYLOAD [OUTPUT] TIME_MS */
        WIRE_STORE_REPLY,          /* unused: keeps the numbers of the types after it */
        /* Unused since presence went on the bus ($edgehub/presence, proto/ipc/bus.h): keep the numbers after them */
        _WIRE_RETIRED_7,
        _WIRE_RETIRED_8,
        /* hubctl -> any daemon */
        WIRE_CONTROL_REQUEST,      /* COMMAND [ARGUMENT] */
        WIRE_CONTROL_REPLY,        /* STATUS [ERROR] [JSON] */

        WIRE_CONFIG_APPLY_REQUEST, /* JSON: the $edgeHub twin's desired properties (with "$version") */
        WIRE_CONFIG_APPLY_REPLY,   /* STATUS [ERROR]; EINVAL refused (ERROR says why, for lastDesiredStatus) */
        /* agent -> hub-store: the deployment's edgeHub storageFolder, where the message store is to live */
        WIRE_STORAGE_FOLDER_REQUEST, /* ARGUMENT: an absolute folder */
        WIRE_STORAGE_FOLDER_REPLY,   /* STATUS [ERROR]; 0 accepted (the move follows: hubctl status), else why not */
        /* method-router -> auth-cache: is this an enabled identity of the scope? No key travels */
        WIRE_IDENTITY_REQUEST,     /* IDENTITY */
        WIRE_IDENTITY_REPLY,       /* STATUS; the same verdicts as WIRE_KEY_REPLY */
        _WIRE_TYPE_MAX,
};

enum {
        WIRE_STATUS = 1,           /* u32 */
        WIRE_ERROR,                /* text */
        WIRE_CLIENT_ID,            /* text */
        WIRE_USERNAME,             /* text */
        WIRE_PASSWORD,             /* bytes */
        WIRE_IDENTITY,             /* text: "device" or "device/module" */
        WIRE_KEY,                  /* text: base64 symmetric key */
        WIRE_PROPERTIES,           /* text: the IoT Hub property bag, url-encoded */
        WIRE_PAYLOAD,              /* bytes */
        WIRE_OUTPUT,               /* text: module output name */
        WIRE_CONNECTED,            /* u32; no longer sent (presence is on the bus), keeps the numbers after it */
        WIRE_COMMAND,              /* text */
        WIRE_ARGUMENT,             /* text */
        WIRE_JSON,                 /* text: a JSON document */
        WIRE_TIME_MS,              /* u64: enqueue time, realtime ms (ingest log records) */
        WIRE_CERTIFICATE,          /* bytes: DER of the leaf certificate a device presented in its TLS handshake */
        _WIRE_TAG_MAX,
};
