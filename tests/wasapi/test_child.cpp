// wasapi-test-child.exe <event name> <lifetime ms>: a real process for the target-exit and
// process tests. Exits with 0 when the named event is set, with 3 after the lifetime, with
// 2 on bad arguments.
#include <windows.h>

#include <cstdlib>

int main(int argc, char **argv) {
  if (argc != 3) {
    return 2;
  }
  const DWORD lifetime = static_cast<DWORD>(std::strtoul(argv[2], nullptr, 10));
  HANDLE event = OpenEventA(SYNCHRONIZE, FALSE, argv[1]);
  if (event == nullptr) {
    Sleep(lifetime);  // the parent is gone already: still bounded
    return 3;
  }
  const DWORD wait = WaitForSingleObject(event, lifetime);
  CloseHandle(event);
  return wait == WAIT_OBJECT_0 ? 0 : 3;
}
