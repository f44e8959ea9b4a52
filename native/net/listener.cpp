#include "net/listener.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "log.hpp"
#include "net/worker.hpp"

namespace sidewire {

namespace asio = boost::asio;

Listener::Listener(std::vector<Worker*> workers, Route route)
    : workers_(std::move(workers)), route_(std::make_shared<const Route>(std::move(route))) {}

Listener::~Listener() { stop(); }

void sniff(Worker& worker, int fd, std::shared_ptr<const Listener::Route> route);

namespace {
int open_listening(const addrinfo& ai, int backlog, std::string& error) {
  const int fd = ::socket(ai.ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return -1;
  }
  const int one = 1;
  const int zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ai.ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (::bind(fd, ai.ai_addr, ai.ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
    error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}
}  // namespace

std::uint16_t Listener::listen(const std::string& host, std::uint16_t port, int backlog) {
  if (fd_ >= 0) throw std::runtime_error("already listening");
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  std::string error = "no address";
  if (host.empty()) {
    // As Node: every interface, through one dual-stack IPv6 socket when there is IPv6.
    for (const char* any : {"::", "0.0.0.0"}) {
      hints.ai_flags |= AI_NUMERICHOST;
      if (::getaddrinfo(any, service.c_str(), &hints, &found) != 0) continue;
      fd_ = open_listening(*found, backlog, error);
      ::freeaddrinfo(found);
      if (fd_ >= 0) break;
    }
  } else {
    const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
    if (rc != 0) throw std::runtime_error("cannot resolve " + host + ": " + ::gai_strerror(rc));
    for (addrinfo* ai = found; ai && fd_ < 0; ai = ai->ai_next) fd_ = open_listening(*ai, backlog, error);
    ::freeaddrinfo(found);
  }
  if (fd_ < 0) throw std::runtime_error("cannot listen on " + (host.empty() ? "*" : host) + ":" + service + ": " + error);
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  const std::uint16_t bound = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(addr).sin6_port
                                                               : reinterpret_cast<sockaddr_in&>(addr).sin_port);
  stopping_ = false;
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "sidewire-accept");
    accept_loop();
  });
  log().info("listening on {}:{} (backlog {})", host.empty() ? "*" : host, bound, backlog);
  return bound;
}

void Listener::stop() {
  if (fd_ < 0) return;
  stopping_ = true;
  ::shutdown(fd_, SHUT_RDWR);  // wakes the blocking accept()
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
  fd_ = -1;
}

void Listener::accept_loop() {
  while (!stopping_.load(std::memory_order_relaxed)) {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_.load()) break;
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        log().error("accept failed: {}; pausing accepts for 100 ms", std::strerror(errno));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      if (errno == EINVAL) break;  // the socket was shut down
      log().error("accept failed: {}", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // what Node's HTTP server does too
    Worker* w = workers_[next_++ % workers_.size()];
    w->command([route = route_, w, fd] { sniff(*w, fd, route); });
  }
}

namespace {
// The wait for a whole request head on one accepted connection. Peeks (MSG_PEEK), so whoever
// gets the connection reads the request from the start.
struct Sniff : std::enable_shared_from_this<Sniff> {
  Sniff(Worker& w, int fd, std::shared_ptr<const Listener::Route> route)
      : worker(w), descriptor(w.io(), fd), timer(w.io()), route(std::move(route)) {}

  Worker& worker;
  asio::posix::stream_descriptor descriptor;
  asio::steady_timer timer;
  std::shared_ptr<const Listener::Route> route;
  std::uint32_t first_data = 0;
  bool got_data = false;
  bool done = false;

  void wait_first_byte() {
    auto self = shared_from_this();
    descriptor.async_wait(asio::posix::stream_descriptor::wait_read, [self](const boost::system::error_code& ec) {
      if (ec || self->done) return;
      self->timer.cancel();
      self->peek();
    });
    timer.expires_after(std::chrono::milliseconds(Listener::kFirstByteTimeoutMs));
    timer.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->done) return;
      self->finish({}, false);  // an idle connection (a browser's preconnect): Node's timeouts decide
    });
  }

  void peek() {
    worker.refresh_clock();
    static thread_local char buf[Listener::kMaxHead];
    const ssize_t n = ::recv(descriptor.native_handle(), buf, sizeof buf, MSG_PEEK);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      done = true;  // the client went away before it asked for anything
      boost::system::error_code ignored;
      descriptor.close(ignored);
      return;
    }
    const std::string_view data(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    const std::size_t end = data.find("\r\n\r\n");
    if (end != std::string_view::npos) return finish(data.substr(0, end + 4), true);
    if (data.size() >= sizeof buf) return finish({}, false);  // Node answers 431
    if (!got_data) {
      got_data = true;
      first_data = worker.now_ms();
    }
    if (worker.now_ms() - first_data >= Listener::kHeadTimeoutMs) return finish({}, false);
    // The rest of the head is on its way: look again shortly (the peeked bytes stay readable,
    // so waiting for readability would not wait).
    auto self = shared_from_this();
    timer.expires_after(std::chrono::milliseconds(5));
    timer.async_wait([self](const boost::system::error_code& ec) {
      if (!ec && !self->done) self->peek();
    });
  }

  void finish(std::string_view head, bool complete) {
    done = true;
    timer.cancel();
    descriptor.cancel();
    const int fd = descriptor.release();
    (*route)(worker, fd, head, complete);
  }
};
}  // namespace

void sniff(Worker& worker, int fd, std::shared_ptr<const Listener::Route> route) {
  std::make_shared<Sniff>(worker, fd, std::move(route))->wait_first_byte();
}

}  // namespace sidewire
