#pragma once

namespace birdwatch {

// The cores this process may really run on: those in the calling thread's CPU affinity
// mask (taskset, systemd CPUAffinity=, docker --cpuset-cpus), and no more than its cgroup
// v2 CPU quota allows (docker --cpus, systemd CPUQuota=), rounded up; at least 1.
unsigned usable_cores();

}  // namespace birdwatch
