// SPDX-License-Identifier: LGPL-2.1-or-later
// A stand-in for the Windows SDK's <audioclientactivationparams.h> (10.0.20348 and later)
// with the SDK's gating: everything is declared only for the APP partition and when
// NTDDI_VERSION >= NTDDI_WIN10_FE. Put first on the include path, it gives a mingw-w64 build
// what a Visual Studio 2022 build meets: with the project's _WIN32_WINNT (0x0A00, so
// NTDDI_VERSION 0x0A000000) the header is found and declares nothing.
#pragma once

#include <sdkddkver.h>
#include <winapifamily.h>

// Lets the tests prove that this file, not another, was included.
#define PROCAUDIO_SDK_STANDIN_INCLUDED 1

#if WINAPI_FAMILY_PARTITION(WINAPI_PARTITION_APP)
#if (NTDDI_VERSION >= NTDDI_WIN10_FE)

#define VIRTUAL_AUDIO_DEVICE_PROCESS_LOOPBACK L"VAD\\Process_Loopback"

typedef enum PROCESS_LOOPBACK_MODE {
  PROCESS_LOOPBACK_MODE_INCLUDE_TARGET_PROCESS_TREE = 0,
  PROCESS_LOOPBACK_MODE_EXCLUDE_TARGET_PROCESS_TREE = 1
} PROCESS_LOOPBACK_MODE;

typedef struct AUDIOCLIENT_PROCESS_LOOPBACK_PARAMS {
  DWORD TargetProcessId;
  PROCESS_LOOPBACK_MODE ProcessLoopbackMode;
} AUDIOCLIENT_PROCESS_LOOPBACK_PARAMS;

typedef enum AUDIOCLIENT_ACTIVATION_TYPE {
  AUDIOCLIENT_ACTIVATION_TYPE_DEFAULT = 0,
  AUDIOCLIENT_ACTIVATION_TYPE_PROCESS_LOOPBACK = 1
} AUDIOCLIENT_ACTIVATION_TYPE;

typedef struct AUDIOCLIENT_ACTIVATION_PARAMS {
  AUDIOCLIENT_ACTIVATION_TYPE ActivationType;
  union {
    AUDIOCLIENT_PROCESS_LOOPBACK_PARAMS ProcessLoopbackParams;
  } DUMMYUNIONNAME;
} AUDIOCLIENT_ACTIVATION_PARAMS;

#endif  // NTDDI_VERSION >= NTDDI_WIN10_FE
#endif  // WINAPI_PARTITION_APP
