// SPDX-License-Identifier: LGPL-2.1-or-later
// The process-loopback activation parameters of the Windows SDK's
// <audioclientactivationparams.h> (10.0.20348 and later).
//
// The header being there is not enough: the SDK declares everything in it only when
// NTDDI_VERSION >= NTDDI_WIN10_FE (and for the APP partition). This project targets every
// Windows 10 (_WIN32_WINNT 0x0A00, so NTDDI_VERSION 0x0A000000), so that the plugin loads on
// builds without process loopback and says what is missing; with the Visual Studio 2022 SDK
// the header is found and declares nothing. So the choice is made on what it declared:
// VIRTUAL_AUDIO_DEVICE_PROCESS_LOOPBACK is declared in the same block as the types. mingw-w64
// 10 has no such header at all. The definitions below are the SDK's, byte for byte.
// tests/wasapi/sdk-standin/ compiles every WASAPI source against a copy of the SDK's gating,
// in both states.
#pragma once

#include <windows.h>

#if defined(__has_include)
#if __has_include(<audioclientactivationparams.h>)
#include <audioclientactivationparams.h>
#endif
#endif

#if !defined(VIRTUAL_AUDIO_DEVICE_PROCESS_LOOPBACK)

// Set when these definitions are this file's own (the tests check which were used).
#define PROCAUDIO_OWN_PROCESS_LOOPBACK_PARAMS 1

// The virtual device ActivateAudioInterfaceAsync activates a process-loopback client on.
#define VIRTUAL_AUDIO_DEVICE_PROCESS_LOOPBACK L"VAD\\Process_Loopback"

typedef enum AUDIOCLIENT_ACTIVATION_TYPE {
  AUDIOCLIENT_ACTIVATION_TYPE_DEFAULT = 0,
  AUDIOCLIENT_ACTIVATION_TYPE_PROCESS_LOOPBACK = 1,
} AUDIOCLIENT_ACTIVATION_TYPE;

typedef enum PROCESS_LOOPBACK_MODE {
  PROCESS_LOOPBACK_MODE_INCLUDE_TARGET_PROCESS_TREE = 0,
  PROCESS_LOOPBACK_MODE_EXCLUDE_TARGET_PROCESS_TREE = 1,
} PROCESS_LOOPBACK_MODE;

typedef struct AUDIOCLIENT_PROCESS_LOOPBACK_PARAMS {
  DWORD TargetProcessId;
  PROCESS_LOOPBACK_MODE ProcessLoopbackMode;
} AUDIOCLIENT_PROCESS_LOOPBACK_PARAMS;

typedef struct AUDIOCLIENT_ACTIVATION_PARAMS {
  AUDIOCLIENT_ACTIVATION_TYPE ActivationType;
  union {  // anonymous, as the SDK's DUMMYUNIONNAME is in C++
    AUDIOCLIENT_PROCESS_LOOPBACK_PARAMS ProcessLoopbackParams;
  };
} AUDIOCLIENT_ACTIVATION_PARAMS;

#endif

// What the audio service reads from the VT_BLOB: 4 (type) + 4 (pid) + 4 (mode) bytes.
static_assert(sizeof(AUDIOCLIENT_PROCESS_LOOPBACK_PARAMS) == 8,
              "AUDIOCLIENT_PROCESS_LOOPBACK_PARAMS must be 8 bytes");
static_assert(sizeof(AUDIOCLIENT_ACTIVATION_PARAMS) == 12,
              "AUDIOCLIENT_ACTIVATION_PARAMS must be 12 bytes, as the audio service expects");
