// SPDX-License-Identifier: LGPL-2.1-or-later
#include "hresult.h"

#include <cstdint>
#include <cstdio>

#include "win_string.h"

namespace procaudio {
namespace wasapi {

namespace {

struct Known {
  uint32_t code;
  const char *name;
  const char *text;  // documented meaning, used when the system has no message; may be null
};

// The audio client's codes (audioclient.h; values written out so that every SDK compiles
// this) and the generic ones the activation and the capture loop can meet.
constexpr Known kKnownHresults[] = {
    {0x00000000u, "S_OK", nullptr},
    {0x00000001u, "S_FALSE", nullptr},
    {0x80004001u, "E_NOTIMPL", "Not implemented"},
    {0x80004002u, "E_NOINTERFACE", "No such interface supported"},
    {0x80004003u, "E_POINTER", "Invalid pointer"},
    {0x80004004u, "E_ABORT", "Operation aborted"},
    {0x80004005u, "E_FAIL", "Unspecified error"},
    {0x8000FFFFu, "E_UNEXPECTED", "Catastrophic failure"},
    {0x8000000Eu, "E_ILLEGAL_METHOD_CALL", "A method was called at an unexpected time"},
    {0x80070005u, "E_ACCESSDENIED", "Access is denied"},
    {0x80070006u, "E_HANDLE", "The handle is invalid"},
    {0x8007000Eu, "E_OUTOFMEMORY", "Not enough memory resources are available"},
    {0x80070057u, "E_INVALIDARG", "The parameter is incorrect"},
    {0x80070002u, "HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)",
     "The system cannot find the file specified"},
    {0x80070490u, "HRESULT_FROM_WIN32(ERROR_NOT_FOUND)", "Element not found"},
    {0x800705B4u, "HRESULT_FROM_WIN32(ERROR_TIMEOUT)",
     "This operation returned because the "
     "timeout period expired"},
    {0x80010106u, "RPC_E_CHANGED_MODE", "Cannot change thread mode after it is set"},
    {0x80010108u, "RPC_E_DISCONNECTED", "The object invoked has disconnected from its clients"},
    {0x800706BAu, "HRESULT_FROM_WIN32(RPC_S_SERVER_UNAVAILABLE)", "The RPC server is unavailable"},
    {0x800401F0u, "CO_E_NOTINITIALIZED", "CoInitialize has not been called"},
    {0x80040154u, "REGDB_E_CLASSNOTREG", "Class not registered"},
    {0x08890001u, "AUDCLNT_S_BUFFER_EMPTY", "The capture buffer holds no packet"},
    {0x08890002u, "AUDCLNT_S_THREAD_ALREADY_REGISTERED", nullptr},
    {0x08890003u, "AUDCLNT_S_POSITION_STALLED", nullptr},
    {0x88890001u, "AUDCLNT_E_NOT_INITIALIZED", "The audio stream has not been initialized"},
    {0x88890002u, "AUDCLNT_E_ALREADY_INITIALIZED", "The audio stream is already initialized"},
    {0x88890003u, "AUDCLNT_E_WRONG_ENDPOINT_TYPE", "Wrong endpoint type for this operation"},
    {0x88890004u, "AUDCLNT_E_DEVICE_INVALIDATED",
     "The audio endpoint device has been unplugged, or the audio hardware or associated "
     "hardware resources have been reconfigured, disabled, removed, or otherwise made "
     "unavailable for use"},
    {0x88890005u, "AUDCLNT_E_NOT_STOPPED", "The audio stream was not stopped"},
    {0x88890006u, "AUDCLNT_E_BUFFER_TOO_LARGE", "The requested buffer size is too large"},
    {0x88890007u, "AUDCLNT_E_OUT_OF_ORDER", "A previous GetBuffer call is still in effect"},
    {0x88890008u, "AUDCLNT_E_UNSUPPORTED_FORMAT", "The requested audio format is not supported"},
    {0x88890009u, "AUDCLNT_E_INVALID_SIZE", "The number of frames is invalid"},
    {0x8889000Au, "AUDCLNT_E_DEVICE_IN_USE", "The endpoint device is already in use"},
    {0x8889000Bu, "AUDCLNT_E_BUFFER_OPERATION_PENDING", "A buffer operation is pending"},
    {0x8889000Cu, "AUDCLNT_E_THREAD_NOT_REGISTERED", nullptr},
    {0x8889000Eu, "AUDCLNT_E_EXCLUSIVE_MODE_NOT_ALLOWED", nullptr},
    {0x8889000Fu, "AUDCLNT_E_ENDPOINT_CREATE_FAILED", "The audio endpoint could not be created"},
    {0x88890010u, "AUDCLNT_E_SERVICE_NOT_RUNNING", "The Windows audio service is not running"},
    {0x88890011u, "AUDCLNT_E_EVENTHANDLE_NOT_EXPECTED",
     "The stream was not initialized for event-driven buffering"},
    {0x88890012u, "AUDCLNT_E_EXCLUSIVE_MODE_ONLY", nullptr},
    {0x88890013u, "AUDCLNT_E_BUFDURATION_PERIOD_NOT_EQUAL", nullptr},
    {0x88890014u, "AUDCLNT_E_EVENTHANDLE_NOT_SET", "No event handle was set before Start"},
    {0x88890015u, "AUDCLNT_E_INCORRECT_BUFFER_SIZE", nullptr},
    {0x88890016u, "AUDCLNT_E_BUFFER_SIZE_ERROR", "The buffer duration is out of range"},
    {0x88890017u, "AUDCLNT_E_CPUUSAGE_EXCEEDED", "The audio engine exceeded its CPU budget"},
    {0x88890018u, "AUDCLNT_E_BUFFER_ERROR", "The audio buffer could not be obtained"},
    {0x88890019u, "AUDCLNT_E_BUFFER_SIZE_NOT_ALIGNED", nullptr},
    {0x88890020u, "AUDCLNT_E_INVALID_DEVICE_PERIOD", nullptr},
    {0x88890021u, "AUDCLNT_E_INVALID_STREAM_FLAG", "A stream flag is invalid for this stream"},
    {0x88890022u, "AUDCLNT_E_ENDPOINT_OFFLOAD_NOT_CAPABLE", nullptr},
    {0x88890023u, "AUDCLNT_E_OUT_OF_OFFLOAD_RESOURCES", nullptr},
    {0x88890024u, "AUDCLNT_E_OFFLOAD_MODE_ONLY", nullptr},
    {0x88890025u, "AUDCLNT_E_NONOFFLOAD_MODE_ONLY", nullptr},
    {0x88890026u, "AUDCLNT_E_RESOURCES_INVALIDATED",
     "The audio resources were invalidated (the device or its format changed)"},
    {0x88890027u, "AUDCLNT_E_RAW_MODE_UNSUPPORTED", nullptr},
    {0x88890028u, "AUDCLNT_E_ENGINE_PERIODICITY_LOCKED", nullptr},
    {0x88890029u, "AUDCLNT_E_ENGINE_FORMAT_LOCKED", nullptr},
};

constexpr Known kKnownWin32[] = {
    {0, "ERROR_SUCCESS", nullptr},
    {2, "ERROR_FILE_NOT_FOUND", "The system cannot find the file specified"},
    {5, "ERROR_ACCESS_DENIED", "Access is denied"},
    {6, "ERROR_INVALID_HANDLE", "The handle is invalid"},
    {8, "ERROR_NOT_ENOUGH_MEMORY", "Not enough memory resources are available"},
    {87, "ERROR_INVALID_PARAMETER", "The parameter is incorrect"},
    {1168, "ERROR_NOT_FOUND", "Element not found"},
    {1460, "ERROR_TIMEOUT", "This operation returned because the timeout period expired"},
};

template <size_t N>
const Known *find(const Known (&table)[N], uint32_t code) {
  for (const Known &k : table) {
    if (k.code == code) {
      return &k;
    }
  }
  return nullptr;
}

// FormatMessage's text for a system message id, UTF-8, without trailing ". \r\n".
std::string system_text(DWORD id) {
  wchar_t *buffer = nullptr;
  const DWORD length = FormatMessageW(
      FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
      nullptr, id, MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT), reinterpret_cast<LPWSTR>(&buffer), 0,
      nullptr);
  std::string text;
  if (length > 0 && buffer != nullptr) {
    text = to_utf8(buffer, length);
  }
  if (buffer != nullptr) {
    LocalFree(buffer);
  }
  while (!text.empty() &&
         (text.back() == '\r' || text.back() == '\n' || text.back() == ' ' || text.back() == '.')) {
    text.pop_back();
  }
  return text;
}

// The system's text for `code`, else the documented meaning of `known` (may be null).
std::string text_of(DWORD code, const Known *known) {
  std::string text = system_text(code);
  if (text.empty() && known != nullptr && known->text != nullptr) {
    text = known->text;
  }
  return text;
}

std::string compose(const std::string &head, const char *name, const std::string &text) {
  std::string out = head + " (";
  if (name != nullptr) {
    out += name;
    if (!text.empty()) {
      out += ": " + text;
    }
  } else {
    out += text.empty() ? std::string("no system text") : text;
  }
  return out + ")";
}

}  // namespace

const char *hresult_name(HRESULT hr) {
  const Known *k = find(kKnownHresults, static_cast<uint32_t>(hr));
  return k != nullptr ? k->name : nullptr;
}

std::string hresult_text(HRESULT hr) {
  return text_of(static_cast<DWORD>(hr), find(kKnownHresults, static_cast<uint32_t>(hr)));
}

std::string format_hresult(HRESULT hr) {
  char head[16];
  std::snprintf(head, sizeof head, "0x%08lX", static_cast<unsigned long>(hr));
  const Known *k = find(kKnownHresults, static_cast<uint32_t>(hr));
  return compose(head, k != nullptr ? k->name : nullptr, text_of(static_cast<DWORD>(hr), k));
}

std::string format_win32_error(DWORD code) {
  const Known *k = find(kKnownWin32, code);
  return compose("error " + std::to_string(code), k != nullptr ? k->name : nullptr,
                 text_of(code, k));
}

CaptureError hresult_error(ErrorKind kind, std::string message, const char *call, HRESULT hr) {
  return {kind, std::move(message), std::string(call) + " failed: " + format_hresult(hr)};
}

CaptureError win32_error(ErrorKind kind, std::string message, const char *call, DWORD code) {
  return {kind, std::move(message), std::string(call) + " failed: " + format_win32_error(code)};
}

}  // namespace wasapi
}  // namespace procaudio
