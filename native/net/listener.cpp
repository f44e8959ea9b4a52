#include "net/listener.hpp"
#include "net/tls.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <utility>
#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "log.hpp"
#include "net/worker.hpp"

namespace sidewire {

namespace {
// An accepted descriptor on its way to an I/O thread.
struct PendingFd {
  int fd = -1;
  PendingFd() = default;
  PendingFd(const PendingFd&) = delete;
  PendingFd& operator=(const PendingFd&) = delete;
  ~PendingFd() {
    if (fd >= 0) ::close(fd);
  }
  int take() { return std::exchange(fd, -1); }
};
}  // namespace

std::string peer_address(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return {};
  if (addr.ss_family != AF_INET && addr.ss_family != AF_INET6) return {};
  char text[INET6_ADDRSTRLEN] = {};
  const void* src = addr.ss_family == AF_INET6 ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6&>(addr).sin6_addr)
                                               : static_cast<const void*>(&reinterpret_cast<sockaddr_in&>(addr).sin_addr);
  return ::inet_ntop(addr.ss_family, src, text, sizeof text) ? std::string(text) : std::string();
}


namespace asio = boost::asio;

Listener::Listener(std::vector<Worker*> workers, Route route)
    : workers_(std::move(workers)), route_(std::make_shared<const Route>(std::move(route))) {}

Listener::~Listener() { stop(); }


namespace {
// What the client has sent so far, peeked (nothing is consumed) into this thread's buffer: `n`
// as recv returned it (errno holds the reason when negative), and where the request head ends,
// the empty line included (npos: not there yet, or not within kMaxHead).
struct Peek {
  const char* data;
  ssize_t n;
  std::size_t head_size;
};
Peek peek_head(int fd, int flags) {
  static thread_local char buf[Listener::kMaxHead];
  const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_PEEK | flags);
  std::size_t head_size = std::string_view::npos;
  if (n > 0) {
    const std::size_t end = std::string_view(buf, static_cast<std::size_t>(n)).find("\r\n\r\n");
    if (end != std::string_view::npos) head_size = end + 4;
  }
  return {buf, n, head_size};
}

// A listening socket on `ai`; with `reuse_port`, one of a group sharing the port.
int open_listening(const addrinfo& ai, int backlog, bool reuse_port, std::string& error) {
  const int fd = ::socket(ai.ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return -1;
  }
  const int one = 1;
  const int zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (ai.ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (::bind(fd, ai.ai_addr, ai.ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
    error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

std::uint16_t port_of(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(addr).sin6_port
                                          : reinterpret_cast<sockaddr_in&>(addr).sin_port);
}

void set_port(addrinfo& ai, std::uint16_t port) {
  if (ai.ai_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(ai.ai_addr)->sin6_port = htons(port);
  else reinterpret_cast<sockaddr_in*>(ai.ai_addr)->sin_port = htons(port);
}

// Is the port free for a socket that does not share it? (Another process's SO_REUSEPORT group,
// a Node server, anything bound there: then we must fail as server.listen() would, not join.)
bool port_free(const addrinfo& ai, std::string& error) {
  const int fd = ::socket(ai.ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return false;
  }
  const int one = 1;
  const int zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ai.ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  const bool ok = ::bind(fd, ai.ai_addr, ai.ai_addrlen) == 0;
  if (!ok) error = std::strerror(errno);
  ::close(fd);
  return ok;
}
}  // namespace

std::uint16_t Listener::listen(const std::string& host, std::uint16_t port, int backlog, unsigned queues) {
  if (!fds_.empty()) throw std::runtime_error("already listening");
  queues = std::clamp(queues, 1u, 16u);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  const std::string service = std::to_string(port);
  std::vector<addrinfo*> lists;
  if (host.empty()) {
    // As Node: every interface, through one dual-stack IPv6 socket when there is IPv6.
    hints.ai_flags |= AI_NUMERICHOST;
    for (const char* any : {"::", "0.0.0.0"}) {
      addrinfo* found = nullptr;
      if (::getaddrinfo(any, service.c_str(), &hints, &found) == 0) lists.push_back(found);
    }
  } else {
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
    if (rc != 0) throw std::runtime_error("cannot resolve " + host + ": " + ::gai_strerror(rc));
    lists.push_back(found);
  }
  std::string error = "no address";
  for (addrinfo* list : lists) {
    for (addrinfo* ai = list; ai && fds_.empty(); ai = ai->ai_next) {
      // Several sockets share the port (SO_REUSEPORT), each with an accept queue of its own
      // (the kernel caps one at net.core.somaxconn): a burst larger than one queue waits in
      // the others instead of being dropped, to come back a second later, while the accept
      // thread catches up. The port must be free first: sharing stays within this group.
      if (queues > 1 && port != 0 && !port_free(*ai, error)) continue;
      const int first = open_listening(*ai, backlog, queues > 1, error);
      if (first < 0) continue;
      fds_.push_back(first);
      set_port(*ai, port_of(first));  // port 0: the others join the port the first one got
      for (unsigned i = 1; i < queues; ++i) {
        const int fd = open_listening(*ai, backlog, true, error);
        if (fd < 0) break;  // fewer queues, still listening
        fds_.push_back(fd);
      }
    }
    if (!fds_.empty()) break;
  }
  for (addrinfo* list : lists) ::freeaddrinfo(list);
  if (fds_.empty()) throw std::runtime_error("cannot listen on " + (host.empty() ? "*" : host) + ":" + service + ": " + error);
  const std::uint16_t bound = port_of(fds_.front());
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    const std::string why = std::strerror(errno);
    for (int fd : fds_) ::close(fd);
    fds_.clear();
    throw std::runtime_error("cannot listen: pipe: " + why);
  }
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "sidewire-accept");
    accept_loop();
  });
  log().info("listening on {}:{} ({} accept queue(s), backlog {} each)", host.empty() ? "*" : host, bound, fds_.size(),
             backlog);
  return bound;
}

void Listener::stop() {
  if (fds_.empty()) return;
  const char byte = 1;
  if (::write(wake_[1], &byte, 1) < 0) log().warn("cannot wake the accept thread: {}", std::strerror(errno));
  if (thread_.joinable()) thread_.join();
  for (int fd : fds_) ::close(fd);
  fds_.clear();
  ::close(wake_[0]);
  ::close(wake_[1]);
  wake_[0] = wake_[1] = -1;
}

void Listener::accept_loop() {
  std::vector<pollfd> polls;
  for (int fd : fds_) polls.push_back({fd, POLLIN, 0});
  polls.push_back({wake_[0], POLLIN, 0});
  for (;;) {
    if (::poll(polls.data(), polls.size(), -1) < 0) {
      if (errno == EINTR) continue;
      log().error("accept: poll failed: {}", std::strerror(errno));
      return;
    }
    if (polls.back().revents) return;  // stop()
    for (std::size_t i = 0; i + 1 < polls.size(); ++i) {
      if (!polls[i].revents) continue;
      // Empty the queue: a burst waits in the kernel only as long as it takes to accept it.
      for (;;) {
        const int fd = ::accept4(polls[i].fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            log().error("accept failed: {}; pausing accepts for 100 ms", std::strerror(errno));
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          } else {
            log().error("accept failed: {}", std::strerror(errno));
          }
          break;
        }
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // what Node's HTTP server does too
        Worker* w = workers_[next_++ % workers_.size()];
        if (std::shared_ptr<TlsTerminator> tls = std::atomic_load(&tls_)) {
          // TLS: the handshake first, on the I/O thread; the decrypted stream is sniffed after it.
          auto owned = std::make_shared<PendingFd>();
          owned->fd = fd;
          w->command([tls, route = route_, w, owned] {
            w->refresh_clock();
            const int fd = owned->take();
            tls->start(*w, fd, peer_address(fd), route);
          });
          continue;
        }
        // In a burst the request is often here already: then the I/O thread routes it at once,
        // without first waiting for it to become readable.
        const Peek peek = peek_head(fd, MSG_DONTWAIT);
        // Owned until the command runs: a command the stopping engine never runs closes it.
        auto owned = std::make_shared<PendingFd>();
        owned->fd = fd;
        if (peek.head_size != std::string_view::npos) {
          w->command([route = route_, w, owned, head = std::string(peek.data, peek.head_size)] {
            w->refresh_clock();
            (*route)(*w, owned->take(), head, true, Listener::Origin{});
          });
        } else {
          w->command([route = route_, w, owned] { sniff(*w, owned->take(), route); });
        }
      }
    }
  }
}

namespace {
// The wait for a whole request head on one accepted connection. Peeks (MSG_PEEK), so whoever
// gets the connection reads the request from the start.
struct Sniff : std::enable_shared_from_this<Sniff> {
  Sniff(Worker& w, int fd, std::shared_ptr<const Listener::Route> route, Listener::Origin origin)
      : worker(w), descriptor(w.io(), fd), timer(w.io()), route(std::move(route)), origin(std::move(origin)) {}

  Worker& worker;
  asio::posix::stream_descriptor descriptor;
  asio::steady_timer timer;
  std::shared_ptr<const Listener::Route> route;
  Listener::Origin origin;
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
    const Peek peek = peek_head(descriptor.native_handle(), 0);
    if (peek.n == 0 || (peek.n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      done = true;  // the client went away before it asked for anything
      boost::system::error_code ignored;
      descriptor.close(ignored);
      return;
    }
    if (peek.head_size != std::string_view::npos) return finish(std::string_view(peek.data, peek.head_size), true);
    if (peek.n >= static_cast<ssize_t>(Listener::kMaxHead)) return finish({}, false);  // Node answers 431
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
    (*route)(worker, fd, head, complete, origin);
  }
};
}  // namespace

void sniff(Worker& worker, int fd, std::shared_ptr<const Listener::Route> route, Listener::Origin origin) {
  std::make_shared<Sniff>(worker, fd, std::move(route), std::move(origin))->wait_first_byte();
}

}  // namespace sidewire
