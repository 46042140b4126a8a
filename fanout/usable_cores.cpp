#include "fanout/usable_cores.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace birdwatch {

unsigned usable_cores() {
    unsigned cores = std::max(1U, std::thread::hardware_concurrency());
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) cores = std::max(1, CPU_COUNT(&set));
    // cgroup v2: our group is "0::<path>" in /proc/self/cgroup; its cpu.max holds "max <period>"
    // (no limit) or "<quota> <period>" in microseconds.
    std::ifstream self("/proc/self/cgroup");
    std::string line, group;
    while (std::getline(self, line))
        if (line.rfind("0::", 0) == 0) group = line.substr(3);
    std::ifstream cpu_max("/sys/fs/cgroup" + (group == "/" ? std::string() : group) + "/cpu.max");
    std::string quota;
    double period = 0;
    if (cpu_max >> quota >> period && quota != "max" && period > 0) {
        const double limit = std::ceil(std::strtod(quota.c_str(), nullptr) / period);
        if (limit >= 1 && limit < cores) cores = static_cast<unsigned>(limit);
    }
    return cores;
}

}  // namespace birdwatch
