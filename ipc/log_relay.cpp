#include "ipc/log_relay.hpp"

#include "ipc/log.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <list>
#include <optional>
#include <thread>

namespace troupe::ipc {

namespace asio = boost::asio;

void log_line_splitter::emit(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (auto r = decode_relay_line(line)) {
    log_record_of(log_record{r->time, r->level, proc_, r->actor, r->text});
    return;
  }
  if (line.empty()) return;
  log_record_of(log_record{std::chrono::system_clock::now(), raw_level_, proc_, {}, line});
}

void log_line_splitter::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(bytes);
      // A line without end is logged in pieces rather than held without bound.
      while (partial_.size() >= log_relay::max_line) {
        emit(std::string_view(partial_).substr(0, log_relay::max_line));
        partial_.erase(0, log_relay::max_line);
      }
      return;
    }
    if (partial_.empty()) {
      emit(bytes.substr(0, nl));
    } else {
      partial_.append(bytes.substr(0, nl));
      emit(partial_);
      partial_.clear();
    }
    bytes.remove_prefix(nl + 1);
  }
}

void log_line_splitter::finish() {
  if (!partial_.empty()) emit(partial_);
  partial_.clear();
}

struct log_relay::impl {
  struct stream {
    stream(asio::io_context& io, int fd, std::string proc, int raw_level)
        : sd(io, fd), lines(std::move(proc), raw_level) {}
    asio::posix::stream_descriptor sd;
    log_line_splitter lines;
    std::array<char, 64 * 1024> buf{};
  };

  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{io.get_executor()};
  std::list<stream> streams;  // the relay thread's only
  std::thread thread;
  bool stopping = false;  // the relay thread's
  std::optional<asio::steady_timer> deadline;
  bool stopped = false;  // the owner's

  void read(std::list<stream>::iterator it) {
    it->sd.async_read_some(asio::buffer(it->buf), [this, it](const boost::system::error_code& e, std::size_t n) {
      if (e == asio::error::operation_aborted) return;  // finish(): abandoned
      if (n > 0) it->lines.feed(std::string_view(it->buf.data(), n));
      if (e) {  // the end: every writer is gone
        it->lines.finish();
        streams.erase(it);
        if (stopping && streams.empty()) finish();
        return;
      }
      read(it);
    });
  }

  void finish() {
    for (auto& s : streams) s.lines.finish();
    streams.clear();
    if (deadline) deadline->cancel();
    work.reset();
    io.stop();
  }
};

log_relay::log_relay() : impl_(std::make_unique<impl>()) {
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

log_relay::~log_relay() { stop(); }

void log_relay::add(int fd, std::string proc, int raw_level) {
  if (fd < 0) return;
  if (impl_->stopped) {
    ::close(fd);
    return;
  }
  asio::post(impl_->io, [this, fd, proc = std::move(proc), raw_level]() mutable {
    auto& s = impl_->streams;
    s.emplace_front(impl_->io, fd, std::move(proc), raw_level);
    impl_->read(s.begin());
  });
}

void log_relay::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  // Streams end when their writers are gone (the daemon stops once its
  // workers have exited); one held open by a straggler is abandoned after
  // a moment.
  asio::post(impl_->io, [this] {
    impl_->stopping = true;
    if (impl_->streams.empty()) return impl_->finish();
    impl_->deadline.emplace(impl_->io, std::chrono::milliseconds(500));
    impl_->deadline->async_wait([this](const boost::system::error_code& e) {
      if (!e) impl_->finish();
    });
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace troupe::ipc
