#include <gtest/gtest.h>

#include "core/target_spec.h"

using procaudio::ErrorKind;
using procaudio::TargetMode;
using procaudio::TargetSpec;

TEST(TargetSpec, NoTargetIsValidAndMeansEverythingButUs) {
  TargetSpec spec;
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
