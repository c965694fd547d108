// bench/python_figures.cpp — the Python runtime's rows of troupe-bench, and
// the Python client's client_ask_rtt_p50_python_*: it runs
// bench/python_bench.py as a child and merges the rows it writes.
//
// Why a child rather than a port: the baselines of these figures are
// Python's own (a plain loop of the worker's interpreter, a bare
// `python3 -c 'import zmq'`) and the driver is the Python client, so the
// script is the one implementation, runnable alone while working on the
// runtime (docs/PERFORMANCE.md §3.0h) and merged here for `make bench`.
#include "bench/bench.hpp"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#ifndef TROUPE_PYTHON3
#error "TROUPE_PYTHON3 must name the python3 of the worker's libpython"
#endif
#ifndef TROUPE_PYTHON_BENCH
#error "TROUPE_PYTHON_BENCH must name bench/python_bench.py"
#endif

namespace troupe::bench {

namespace {

const char* const python_rows[] = {"python_ask_rtt_p50_py_to_cpp",
                                   "python_ask_rtt_p50_cpp_to_py",
                                   "python_in_worker_tell",
                                   "python_version_serving",
                                   "python_actor_memory",
                                   "client_ask_rtt_p50_python_same_cpu",
                                   "client_ask_rtt_p50_python_split_cpu"};

/// Runs argv until it exits (at most timeout); its exit code, -1 on timeout.
/// The child gets SIGTERM when this process dies (the script then stops the
/// system it started), and SIGTERM then SIGKILL on a timeout.
int run_script(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw bench_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) _exit(127);
    // The script's table goes to stderr with the progress: troupe-bench's
    // stdout is its own table.
    ::dup2(STDERR_FILENO, STDOUT_FILENO);
    ::execv(args[0], args.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool termed = false;
  for (;;) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    const auto now = std::chrono::steady_clock::now();
    if (now > deadline && !termed) {
      ::kill(pid, SIGTERM);  // the script stops its system on SIGTERM
      termed = true;
    } else if (now > deadline + std::chrono::seconds(30)) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

void measure_python(const std::string& build_dir, bool quick, std::vector<figure>& out,
                    std::vector<unavailable_figure>& unavailable) {
  say(std::string("the Python runtime's figures: ") + TROUPE_PYTHON3 + " " + TROUPE_PYTHON_BENCH +
      " (its rows merged)");
  auto missing = [&](const std::string& why) {
    say("  python figures unavailable: " + why);
    for (const char* n : python_rows) unavailable.push_back({n, "", why});
  };
  if (!std::filesystem::exists(build_dir + "/bin/troupe-worker-python"))
    return missing(build_dir + "/bin/troupe-worker-python not built");
  char tmpl[] = "/tmp/troupe-bench-python-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  if (fd < 0) throw bench_error("mkstemp failed");
  ::close(fd);
  const std::string json_file = tmpl;
  std::vector<std::string> argv{TROUPE_PYTHON3, TROUPE_PYTHON_BENCH, "--build", build_dir, "--out", json_file};
  if (quick) argv.insert(argv.end(), {"--rounds", "2", "--asks", "300", "--tells", "20000", "--idle", "200"});
  const int rc = run_script(argv, std::chrono::minutes(20));
  json rows;
  try {
    std::ifstream in(json_file);
    if (rc == 0) rows = json::parse(in);
  } catch (const json::exception& e) {
    rows = json();
  }
  std::filesystem::remove(json_file);
  if (rc != 0 || !rows.is_array())
    return missing(rc != 0 ? "python_bench.py exited with " + std::to_string(rc) + " (its reason above)"
                           : "python_bench.py wrote no rows");
  for (const auto& r : rows) {
    figure f;
    f.name = r.value("name", std::string());
    f.value = r.value("value", 0.0);
    f.unit = r.value("unit", std::string());
    f.baseline = r["baseline"].is_number() ? r["baseline"].get<double>() : 0.0;
    f.baseline_is = r.value("baseline_is", std::string("-"));
    f.target = r.value("target", std::string("-"));
    if (r.contains("met") && r["met"].is_boolean()) f.met = r["met"].get<bool>();
    f.samples = r.value("samples", std::vector<double>{});
    f.baseline_samples = r.value("baseline_samples", std::vector<double>{});
    out.push_back(std::move(f));
  }
}

}  // namespace troupe::bench
