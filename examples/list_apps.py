#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""List the applications that play audio now: pid, process name, application name.

    python3 examples/list_apps.py

Capture one of them with Capture(pid=...) or Capture(process_name=...)."""
import argparse

import procaudio


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    apps = procaudio.list_processes()  # a snapshot from the plugin's device provider
    print(f"{'PID':>8}  {'PROCESS':<20} {'APPLICATION':<24} STATE")
    for app in sorted(apps, key=lambda a: a.pid):
        state = "playing" if app.playing else "paused"
        print(f"{app.pid:>8}  {app.process_name:<20} {app.application_name:<24} {state}")
    if not apps:
        print("(no application is playing audio)")


if __name__ == "__main__":
    main()
