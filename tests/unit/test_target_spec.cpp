// SPDX-License-Identifier: LGPL-2.1-or-later
#include <gtest/gtest.h>

#include "core/target_spec.h"

using procaudio::ErrorKind;
using procaudio::OnTargetExit;
using procaudio::TargetMode;
using procaudio::TargetSpec;

TEST(TargetSpec, NoTargetFailsClosedAndSaysHowToNameOne) {
  TargetSpec spec;  // include-tree, nothing set: never "everything"
  const auto error = spec.validate();
  ASSERT_TRUE(error);
  EXPECT_EQ(error.kind, ErrorKind::kInvalidSettings);
  EXPECT_NE(error.message.find("process-name"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("mode=exclude-tree"), std::string::npos) << error.message;
}

TEST(TargetSpec, ExcludeTreeWithNoTargetMeansEverythingButUs) {
  TargetSpec spec;
  spec.mode = TargetMode::kExcludeTree;
  EXPECT_FALSE(spec.validate());
  EXPECT_FALSE(spec.has_target());
  EXPECT_EQ(spec.describe(), "every process except this one");
}

TEST(TargetSpec, PidOrNameAloneIsValid) {
  TargetSpec by_pid;
  by_pid.pid = 42;
  EXPECT_FALSE(by_pid.validate());
  EXPECT_EQ(by_pid.describe(), "pid 42 and its children");

  TargetSpec by_name;
  by_name.process_name = "firefox";
  by_name.mode = TargetMode::kExcludeTree;
  EXPECT_FALSE(by_name.validate());
  EXPECT_EQ(by_name.describe(), "everything except process 'firefox' and its children");
}

TEST(TargetSpec, BothPidAndNameIsAnErrorNamingBoth) {
  TargetSpec spec;
  spec.pid = 42;
  spec.process_name = "firefox";
  const auto error = spec.validate();
  ASSERT_TRUE(error);
  EXPECT_EQ(error.kind, ErrorKind::kInvalidSettings);
  EXPECT_NE(error.message.find("42"), std::string::npos);
  EXPECT_NE(error.message.find("firefox"), std::string::npos);
  EXPECT_NE(error.message.find("only one"), std::string::npos);
}

TEST(TargetSpec, PathInNameIsAnError) {
  TargetSpec spec;
  spec.process_name = "/usr/bin/firefox";
  const auto error = spec.validate();
  ASSERT_TRUE(error);
  EXPECT_EQ(error.kind, ErrorKind::kInvalidSettings);
  spec.process_name = "C:\\Program Files\\chrome.exe";
  EXPECT_TRUE(spec.validate());
}

TEST(TargetSpec, WaitingFollowsANameInIncludeTreeOnly) {
  TargetSpec by_name;
  by_name.process_name = "zoom";
  by_name.on_exit = OnTargetExit::kWait;
  EXPECT_FALSE(by_name.validate());
  EXPECT_TRUE(by_name.follows());

  TargetSpec by_pid;
  by_pid.pid = 42;
  by_pid.on_exit = OnTargetExit::kWait;
  const auto pid_error = by_pid.validate();
  ASSERT_TRUE(pid_error);
  EXPECT_EQ(pid_error.kind, ErrorKind::kInvalidSettings);
  EXPECT_NE(pid_error.message.find("process-name"), std::string::npos) << pid_error.message;
  EXPECT_NE(pid_error.message.find("42"), std::string::npos) << pid_error.message;

  by_name.mode = TargetMode::kExcludeTree;
  const auto mode_error = by_name.validate();
  ASSERT_TRUE(mode_error);
  EXPECT_NE(mode_error.message.find("include-tree"), std::string::npos) << mode_error.message;
}
