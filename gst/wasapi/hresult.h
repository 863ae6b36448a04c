// SPDX-License-Identifier: LGPL-2.1-or-later
// HRESULTs and Win32 error codes as text a developer can act on, for CaptureError::detail:
//   0x88890004 (AUDCLNT_E_DEVICE_INVALIDATED: The audio endpoint device has been unplugged, ...)
//   0x80070002 (HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND): The system cannot find the file ...)
//   error 5 (ERROR_ACCESS_DENIED: Access is denied)
// The text is the system's (FormatMessage) when it has one; the audio client's codes have
// none on many systems (and none under wine), so their documented meaning is built in.
#pragma once

#include <windows.h>

#include <string>

#include "core/capture_error.h"

namespace procaudio {
namespace wasapi {

// The symbolic name of an HRESULT this backend may meet ("AUDCLNT_E_DEVICE_INVALIDATED",
// "E_NOTIMPL", "HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)"), or nullptr.
const char *hresult_name(HRESULT hr);

// The system's message for `hr` (FormatMessage), UTF-8, trailing blanks and period removed;
// for audio client codes without a system message, their documented meaning; "" if none.
std::string hresult_text(HRESULT hr);

// "0x88890004 (AUDCLNT_E_DEVICE_INVALIDATED: <text>)"; a part that is unknown is left out,
// "0x12345678 (no system text)" when both are.
std::string format_hresult(HRESULT hr);

// "error 5 (ERROR_ACCESS_DENIED: Access is denied)", same rules.
std::string format_win32_error(DWORD code);

// A CaptureError of `kind` whose detail is "<call> failed: <format_hresult(hr)>".
CaptureError hresult_error(ErrorKind kind, std::string message, const char *call, HRESULT hr);

// Same for a Win32 error code (GetLastError()).
CaptureError win32_error(ErrorKind kind, std::string message, const char *call, DWORD code);

}  // namespace wasapi
}  // namespace procaudio
