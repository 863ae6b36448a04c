// SPDX-License-Identifier: LGPL-2.1-or-later
// wasapi-test-child.exe <event name> <lifetime ms> [<program>]: a real process for the
// target-exit and process tests. Exits with 0 when the named event is set, with 3 after the
// lifetime, with 2 on bad arguments. With <program> (another copy of this one), it first
// starts that as its own child with the same event and lifetime: a process tree.
#include <windows.h>

#include <cstdlib>
#include <string>

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    return 2;
  }
  const DWORD lifetime = static_cast<DWORD>(std::strtoul(argv[2], nullptr, 10));
  if (argc == 4) {
    std::string command = std::string("\"") + argv[3] + "\" " + argv[1] + " " + argv[2];
    STARTUPINFOA si = {};
    si.cb = sizeof si;
    PROCESS_INFORMATION pi = {};
    if (!CreateProcessA(argv[3], &command[0], nullptr, nullptr, FALSE, 0, nullptr, nullptr, &si,
                        &pi)) {
      return 2;
    }
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
  }
  HANDLE event = OpenEventA(SYNCHRONIZE, FALSE, argv[1]);
  if (event == nullptr) {
    Sleep(lifetime);  // the parent is gone already: still bounded
    return 3;
  }
  const DWORD wait = WaitForSingleObject(event, lifetime);
  CloseHandle(event);
  return wait == WAIT_OBJECT_0 ? 0 : 3;
}
