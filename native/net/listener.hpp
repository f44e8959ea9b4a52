// The engine's own listening socket (Engine::listen): a thread that only accepts, so a burst of
// connections never waits in the kernel's accept queue behind handshakes or JS, and hands each
// connection to an I/O thread, which peeks at the first request head without consuming it.
// The engine then takes the WebSocket upgrades it serves and passes everything else, untouched,
// to Node's HTTP server.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace sidewire {

class Worker;
class TlsTerminator;

class Listener {
 public:
  // Runs on the worker's thread with the connection's descriptor (now the callee's) and the
  // request head peeked from it: `complete` when it holds a whole head (up to and including the
  // empty line); otherwise the client sent nothing whole in time, or too much.
  // `origin`: who it is from when the descriptor cannot say (a TLS connection's decrypted
  // socketpair: the client's address, and that it came over TLS); empty for a plain one.
  struct Origin {
    std::string peer;
    bool tls = false;
  };
  using Route = std::function<void(Worker& worker, int fd, std::string_view head, bool complete, const Origin& origin)>;

  Listener(std::vector<Worker*> workers, Route route);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and listens (host "" = every interface, IPv6 and IPv4 where possible) and starts the
  // accept thread. `queues` listening sockets share the port (SO_REUSEPORT), each with an
  // accept queue of `backlog`; the port must be free of anyone else. Returns the port.
  // Throws std::runtime_error with the reason on failure.
  std::uint16_t listen(const std::string& host, std::uint16_t port, int backlog, unsigned queues = 1);
  // TLS on every connection accepted from now on (nullptr: plain).
  void set_tls(std::shared_ptr<TlsTerminator> tls) { std::atomic_store(&tls_, std::move(tls)); }
  // Stops accepting and closes the listening socket. Idempotent.
  void stop();
  bool listening() const { return !fds_.empty(); }

  static constexpr std::size_t kMaxHead = 16 * 1024;
  static constexpr std::uint32_t kFirstByteTimeoutMs = 2000;  // then Node's own timeouts apply
  static constexpr std::uint32_t kHeadTimeoutMs = 1000;

 private:
  void accept_loop();

  std::vector<Worker*> workers_;
  std::shared_ptr<const Route> route_;  // shared with connections still being sniffed
  std::vector<int> fds_;       // the listening sockets
  int wake_[2] = {-1, -1};     // a pipe: stop() wakes the accept thread's poll()
  std::thread thread_;
  unsigned next_ = 0;
  std::shared_ptr<TlsTerminator> tls_;
};

// The address of a TCP socket's peer, as text ("" for another kind of socket).
std::string peer_address(int fd);

// The wait for a whole request head on `fd` (peeked, not consumed), then `route` (on `worker`'s
// thread).
void sniff(Worker& worker, int fd, std::shared_ptr<const Listener::Route> route, Listener::Origin origin = {});

}  // namespace sidewire
