// The process-loopback activation parameters (Windows SDK 10.0.20348+:
// <audioclientactivationparams.h>). mingw-w64 10 lacks that header: the definitions below
// are the SDK's, byte for byte, used only when the header is not there.
#pragma once

#include <windows.h>

#if defined(__has_include)
#if __has_include(<audioclientactivationparams.h>)
#include <audioclientactivationparams.h>
#define PROCAUDIO_HAVE_AUDIOCLIENTACTIVATIONPARAMS_H 1
#endif
#endif

#if !defined(PROCAUDIO_HAVE_AUDIOCLIENTACTIVATIONPARAMS_H)

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
