// SPDX-License-Identifier: LGPL-2.1-or-later
// Process utilities against real processes (this test, a child it starts) and the name
// rules against synthetic process lists.
#include <gtest/gtest.h>

#include <algorithm>

#include "test_support.h"
#include "wasapi/process_util.h"

namespace procaudio {
namespace wasapi {
namespace {

using testing::ChildProcess;
using testing::executable_stem;
using testing::to_upper;
using testing::unused_pid;

TEST(WindowsVersion, NeedsBuild19041) {
  EXPECT_FALSE(check_process_loopback_supported({10, 0, 19041}));
  EXPECT_FALSE(check_process_loopback_supported({10, 0, 22631}));
  const CaptureError old10 = check_process_loopback_supported({10, 0, 18363});
  EXPECT_EQ(old10.kind, ErrorKind::kUnsupportedOs);
  EXPECT_NE(old10.message.find("Windows 10 version 2004 (build 19041)"), std::string::npos)
      << old10.message;
  EXPECT_NE(old10.message.find("10.0.18363"), std::string::npos) << old10.message;
  EXPECT_EQ(check_process_loopback_supported({6, 1, 7601}).kind, ErrorKind::kUnsupportedOs);
}

TEST(WindowsVersion, IsReadable) {
  WindowsVersion v;
  ASSERT_TRUE(query_windows_version(v));
  EXPECT_GE(v.major, 5u);
}

TEST(OpenProcess, ThisProcess) {
  UniqueHandle h;
  EXPECT_FALSE(open_process(GetCurrentProcessId(), h));
  EXPECT_TRUE(h.valid());
  EXPECT_EQ(WaitForSingleObject(h.get(), 0), static_cast<DWORD>(WAIT_TIMEOUT));
}

TEST(OpenProcess, NoSuchProcess) {
  UniqueHandle h;
  const uint32_t pid = unused_pid();
  const CaptureError error = open_process(pid, h);
  EXPECT_EQ(error.kind, ErrorKind::kNotFound);
  EXPECT_NE(error.message.find("no such process"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find(std::to_string(pid)), std::string::npos) << error.message;
  EXPECT_NE(error.detail.find("OpenProcess"), std::string::npos) << error.detail;
  EXPECT_FALSE(h.valid());
  EXPECT_EQ(open_process(0, h).kind, ErrorKind::kNotFound);
}

TEST(OpenProcess, ExitedProcessIsNotFound) {
  ChildProcess child;
  std::string why;
  ASSERT_TRUE(child.start(20000, why)) << why;
  child.request_exit();
  ASSERT_EQ(child.wait(10000), 0);
  // The child's handle keeps its pid from being reused: it opens, but has exited.
  UniqueHandle h;
  const CaptureError error = open_process(child.pid(), h);
  EXPECT_EQ(error.kind, ErrorKind::kNotFound);
  EXPECT_NE(error.message.find("exited"), std::string::npos) << error.message;
}

TEST(OpenProcess, LiveChildAndItsExitIsSeen) {
  ChildProcess child;
  std::string why;
  ASSERT_TRUE(child.start(20000, why)) << why;
  UniqueHandle h;
  ASSERT_FALSE(open_process(child.pid(), h));
  EXPECT_EQ(WaitForSingleObject(h.get(), 0), static_cast<DWORD>(WAIT_TIMEOUT));
  child.request_exit();
  EXPECT_EQ(WaitForSingleObject(h.get(), 10000), static_cast<DWORD>(WAIT_OBJECT_0));
}

TEST(ProcessName, MatchRules) {
  EXPECT_TRUE(process_name_matches(L"chrome.exe", L"chrome.exe"));
  EXPECT_TRUE(process_name_matches(L"chrome.exe", L"chrome"));
  EXPECT_TRUE(process_name_matches(L"Chrome.EXE", L"CHROME"));
  EXPECT_TRUE(process_name_matches(L"chrome.exe", L"Chrome.Exe"));
  EXPECT_TRUE(process_name_matches(L"\u00c9diteur.exe", L"\u00e9DITEUR"));  // not only ASCII
  EXPECT_FALSE(process_name_matches(L"chrome.exe", L"chrom"));
  EXPECT_FALSE(process_name_matches(L"chromedriver.exe", L"chrome"));
  EXPECT_FALSE(process_name_matches(L"chrome.exe", L"chrome.ex"));
  EXPECT_FALSE(process_name_matches(L"chrome.exe", L""));
  EXPECT_FALSE(process_name_matches(L"chrome.exe", L".exe"));
}

// Which of the matches is the root: tests/unit/test_process_match.cpp. Here: that the names
// select the matches.
TEST(ProcessName, PicksTheRootOfTheTree) {
  // explorer(100) -> chrome(200) -> chrome(300), chrome(400) -> chrome(500);
  // a second, newer chrome(600) started from cmd(700).
  const std::vector<ProcessEntry> ps = {
      {100, 4, L"explorer.exe", 1000}, {200, 100, L"chrome.exe", 2000},
      {300, 200, L"chrome.exe", 2100}, {400, 200, L"chrome.exe", 2200},
      {500, 400, L"chrome.exe", 2300}, {700, 100, L"cmd.exe", 2400},
      {600, 700, L"chrome.exe", 2500}, {800, 100, L"firefox.exe", 1500},
  };
  EXPECT_EQ(pick_root_process(ps, L"chrome"), 200u);
  EXPECT_EQ(pick_root_process(ps, L"FIREFOX.EXE"), 800u);
  EXPECT_EQ(pick_root_process(ps, L"edge"), 0u);
}

TEST(ProcessName, FindsThisTestByName) {
  const std::string stem = executable_stem();
  uint32_t pid = 0;
  UniqueHandle process;
  ASSERT_FALSE(find_process_by_name(stem, pid, process)) << stem;
  EXPECT_EQ(pid, GetCurrentProcessId());
  ASSERT_TRUE(process.valid());
  EXPECT_EQ(GetProcessId(process.get()), GetCurrentProcessId());
  const std::string shouted = to_upper(stem + ".exe");
  ASSERT_FALSE(find_process_by_name(shouted, pid, process)) << shouted;
  EXPECT_EQ(pid, GetCurrentProcessId());
}

uint64_t creation_time(HANDLE process) {
  FILETIME created, exited, kernel, user;
  EXPECT_TRUE(GetProcessTimes(process, &created, &exited, &kernel, &user));
  return (static_cast<uint64_t>(created.dwHighDateTime) << 32) | created.dwLowDateTime;
}

TEST(ProcessName, SeveralMatchesPickTheOldest) {
  // Two processes of one (unique) name, neither the other's parent: the older one wins
  // (equal creation times: the lower pid).
  const testing::ChildCopy exe;
  ASSERT_FALSE(exe.path().empty());
  const std::string name = exe.stem() + ".exe";
  ChildProcess a, b;
  std::string why;
  ASSERT_TRUE(a.start(20000, why, exe.path())) << why;
  ASSERT_TRUE(b.start(20000, why, exe.path())) << why;
  const uint64_t ta = creation_time(a.handle());
  const uint64_t tb = creation_time(b.handle());
  const uint32_t expected = ta < tb ? a.pid() : tb < ta ? b.pid() : std::min(a.pid(), b.pid());
  uint32_t pid = 0;
  UniqueHandle process;
  ASSERT_FALSE(find_process_by_name(name, pid, process)) << name;
  EXPECT_EQ(pid, expected);
  EXPECT_EQ(GetProcessId(process.get()), expected);  // the handle is the process named
  // Without ".exe" and in another case too.
  const std::string upper = to_upper(exe.stem());
  ASSERT_FALSE(find_process_by_name(upper, pid, process)) << upper;
  EXPECT_EQ(pid, expected);
}

TEST(ProcessName, AProcessCreatedAfterTheSnapshotIsNotTheOneItListed) {
  // What a pid reused between the snapshot and OpenProcess looks like: the process opened
  // under that pid was created after the snapshot was taken.
  const uint64_t before = system_time_now();
  ChildProcess child;
  std::string why;
  ASSERT_TRUE(child.start(20000, why)) << why;
  UniqueHandle process;
  uint64_t created = 0;
  const CaptureError reused = open_listed_process(child.pid(), before - 1, process, created);
  EXPECT_EQ(reused.kind, ErrorKind::kNotFound);
  EXPECT_NE(reused.message.find("pid was reused"), std::string::npos) << reused.message;
  EXPECT_NE(reused.detail.find("after the process snapshot"), std::string::npos) << reused.detail;
  EXPECT_FALSE(process.valid());
  EXPECT_GT(created, before - 1);
  // A snapshot taken after it started did list it.
  const CaptureError listed = open_listed_process(child.pid(), system_time_now(), process, created);
  ASSERT_FALSE(listed) << listed.message << " / " << listed.detail;
  EXPECT_EQ(GetProcessId(process.get()), child.pid());
  EXPECT_EQ(created, creation_time(child.handle()));
}

TEST(ProcessName, NoSuchProcess) {
  uint32_t pid = 1;
  UniqueHandle process;
  const CaptureError error = find_process_by_name("no-such-program-procaudio.exe", pid, process);
  EXPECT_EQ(error.kind, ErrorKind::kNotFound);
  EXPECT_EQ(pid, 0u);
  EXPECT_FALSE(process.valid());
  EXPECT_NE(error.message.find("no running process is named 'no-such-program-procaudio.exe'"),
            std::string::npos)
      << error.message;
}

}  // namespace
}  // namespace wasapi
}  // namespace procaudio
