// The local adapter: the rooms of one Socket.IO namespace or one raw channel on this node, and
// the one way their members are selected for a broadcast, a relay or a utility method
// (socket.io's in-memory Adapter, socketioxide's LocalAdapter). Both kinds of member go through
// it; nothing else touches the room tables. A cluster adapter (adapter/cluster.hpp) carries
// what happens here to the other nodes and hands what they did back to it.
//
// Rooms live per I/O thread: each thread holds only the members whose connection it owns, so a
// selection runs on the thread that sends, without a lock. Room sizes are also summed over the
// threads, touched on join and leave only, for JS to read synchronously and for the cluster
// adapter's dynamic subscriptions (room_changed).
//
// M provides, besides what RoomTable asks (memberships(), everyone_slot()):
//   std::uint32_t& mark();      a stamp a selection writes, so a member in several rooms is
//                               chosen once
//   bool selectable() const;    false while it may not receive (a socket not yet connected)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "adapter/rooms.hpp"

namespace sidewire::adapter {

template <typename M>
class LocalAdapter {
 public:
  // `room_changed(room)`: a room appeared on this node or went (any thread, join/leave only).
  explicit LocalAdapter(std::size_t threads, std::function<void(const std::string&)> room_changed = {})
      : room_changed_(std::move(room_changed)) {
    for (std::size_t i = 0; i < threads; ++i) threads_.push_back(std::make_unique<Thread>());
  }

  // ------------------------------------------------------------ on thread `t`, its members only

  // In the room of every member (what a selection without rooms addresses).
  void add(unsigned t, M* m) {
    m->mark() = 0;  // no stamp from before it was here
    threads_[t]->table.add_to_everyone(m);
  }
  // Out of every room, and out of everyone.
  void remove(unsigned t, M* m) {
    RoomTable<M>& table = threads_[t]->table;
    table.leave_all(m, [this](const std::string& name, bool counted) {
      if (counted) count(name, -1);
    });
    table.remove_from_everyone(m);
  }

  enum class Joined : std::uint8_t { kJoined, kAlready, kTooMany };
  // `max_rooms`: how many rooms a member may be in. `counted`: false for a room that is an alias
  // of the member (a recovered socket's old id), which is no room of the node's.
  Joined join(unsigned t, M* m, const std::string& room, std::size_t max_rooms, bool counted = true) {
    RoomTable<M>& table = threads_[t]->table;
    if (m->memberships().size() >= max_rooms) return table.is_member(m, room) ? Joined::kAlready : Joined::kTooMany;
    if (!table.join(m, room, counted)) return Joined::kAlready;
    if (counted) count(room, +1);
    return Joined::kJoined;
  }
  // False when not a member.
  bool leave(unsigned t, M* m, const std::string& room) {
    switch (threads_[t]->table.leave(m, room)) {
      case RoomTable<M>::Left::kNotMember: return false;
      case RoomTable<M>::Left::kCounted: count(room, -1); return true;
      case RoomTable<M>::Left::kUncounted: return true;
    }
    return false;
  }
  bool is_member(unsigned t, M* m, const std::string& room) { return threads_[t]->table.is_member(m, room); }

  // Calls f(member) once for each selectable member of thread `t` in any of `rooms` (every member
  // when `rooms` is empty) and in none of `except`. A name that is no room here goes to
  // resolve(name, g), which may call g(member) for members it stands for (a socket's own id).
  // f must not join or leave: collect first for that.
  template <typename Resolve, typename F>
  void select(unsigned t, const std::vector<std::string>& rooms, const std::vector<std::string>& except,
              Resolve&& resolve, F&& f) {
    Thread& th = *threads_[t];
    const std::uint32_t epoch = next_epoch(th);
    auto members_of = [&](const std::string& room, auto&& g) {
      if (Room<M>* r = th.table.find(room)) {
        for (M* m : r->members) g(m);
      } else {
        resolve(room, g);
      }
    };
    for (const auto& room : except) members_of(room, [&](M* m) { m->mark() = epoch; });
    if (rooms.empty()) {
      for (M* m : th.table.everyone().members) {
        if (m->mark() != epoch) f(*m);
      }
      return;
    }
    for (const auto& room : rooms) {
      members_of(room, [&](M* m) {
        if (m->mark() != epoch && m->selectable()) {
          m->mark() = epoch;
          f(*m);
        }
      });
    }
  }
  template <typename F>
  void select(unsigned t, const std::vector<std::string>& rooms, const std::vector<std::string>& except, F&& f) {
    select(t, rooms, except, [](const std::string&, auto&&) {}, std::forward<F>(f));
  }

  // The members of thread `t` that share a room with `m` (of the same thread), each once, `m`
  // not among them: where a relayed message goes. Walks m's rooms by pointer, no lookup.
  template <typename F>
  void select_peers(unsigned t, M* m, F&& f) {
    Thread& th = *threads_[t];
    const std::uint32_t epoch = next_epoch(th);
    m->mark() = epoch;
    for (const auto& ms : m->memberships()) {
      for (M* peer : ms.room->members) {
        if (peer->mark() != epoch && peer->selectable()) {
          peer->mark() = epoch;
          f(*peer);
        }
      }
    }
  }

  // The rooms a member is in, by name (its own thread).
  template <typename F>
  static void each_room(M& m, F&& f) {
    for (const auto& ms : m.memberships()) f(ms.room->name);
  }
  static std::size_t room_count(M& m) { return m.memberships().size(); }

  // ------------------------------------------------------------------------------ any thread

  // Members in `room` on every thread of this node.
  std::uint64_t size(const std::string& room) const { return counts_.size(room); }
  std::vector<std::pair<std::string, std::uint64_t>> rooms() const { return counts_.all(); }

 private:
  struct Thread {
    RoomTable<M> table;
    std::uint32_t epoch = 0;
  };

  std::uint32_t next_epoch(Thread& th) {
    if (++th.epoch == 0) {  // the stamp wrapped: clear every mark once
      for (M* m : th.table.everyone().members) m->mark() = 0;
      th.epoch = 1;
    }
    return th.epoch;
  }
  void count(const std::string& room, int delta) {
    if (counts_.add(room, delta) && room_changed_) room_changed_(room);
  }

  std::vector<std::unique_ptr<Thread>> threads_;
  RoomCounts counts_;
  std::function<void(const std::string&)> room_changed_;
};

}  // namespace sidewire::adapter
