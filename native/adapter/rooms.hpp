// The rooms of one I/O thread, the local adapter's (adapter/local.hpp) data. A member keeps
// the list of its memberships with its slot in each room, so joining and leaving are O(1)
// (swap with the last member) and fan-out walks a plain vector.
// Member types provide: std::vector<Membership<M>>& memberships(); std::uint32_t& everyone_slot().
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace sidewire {

template <typename M>
struct Room {
  std::string name;
  std::vector<M*> members;
};

template <typename M>
struct Membership {
  Room<M>* room;
  std::uint32_t slot;
  bool counted;  // in the room sizes summed over threads (a recovered socket's old id is not)
};

template <typename M>
class RoomTable {
 public:
  Room<M>* find(const std::string& name) {
    auto it = rooms_.find(name);
    return it == rooms_.end() ? nullptr : it->second.get();
  }
  Room<M>& everyone() { return everyone_; }

  void add_to_everyone(M* m) {
    m->everyone_slot() = static_cast<std::uint32_t>(everyone_.members.size());
    everyone_.members.push_back(m);
  }
  void remove_from_everyone(M* m) {
    const std::uint32_t slot = m->everyone_slot();
    M* last = everyone_.members.back();
    everyone_.members[slot] = last;
    last->everyone_slot() = slot;
    everyone_.members.pop_back();
  }

  // False when already a member. One hash lookup, then a scan of the member's own rooms by
  // pointer, which its room limit keeps short (a room that did not exist needs no scan).
  bool join(M* m, const std::string& name, bool counted = true) {
    auto& list = m->memberships();
    auto& slot = rooms_[name];
    if (!slot) {
      slot = std::make_unique<Room<M>>();
      slot->name = name;
    } else {
      for (const auto& ms : list) {
        if (ms.room == slot.get()) return false;
      }
    }
    list.push_back({slot.get(), static_cast<std::uint32_t>(slot->members.size()), counted});
    slot->members.push_back(m);
    return true;
  }

  bool is_member(M* m, const std::string& name) {
    Room<M>* room = find(name);
    if (!room) return false;
    for (const auto& ms : m->memberships()) {
      if (ms.room == room) return true;
    }
    return false;
  }

  enum class Left : std::uint8_t { kNotMember, kCounted, kUncounted };
  Left leave(M* m, const std::string& name) {
    Room<M>* room = find(name);
    if (!room) return Left::kNotMember;
    auto& list = m->memberships();
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (list[i].room == room) {
        const bool counted = list[i].counted;
        remove(m, i);
        return counted ? Left::kCounted : Left::kUncounted;
      }
    }
    return Left::kNotMember;
  }

  // Calls on_left(name, counted) for each room left.
  template <typename F>
  void leave_all(M* m, F&& on_left) {
    auto& list = m->memberships();
    while (!list.empty()) {
      const std::string name = list.back().room->name;
      const bool counted = list.back().counted;
      remove(m, list.size() - 1);
      on_left(name, counted);
    }
  }

 private:
  void remove(M* m, std::size_t index) {
    auto& list = m->memberships();
    Room<M>* room = list[index].room;
    const std::uint32_t slot = list[index].slot;
    M* last = room->members.back();
    room->members[slot] = last;
    room->members.pop_back();
    if (last != m) {
      for (auto& ms : last->memberships()) {
        if (ms.room == room) ms.slot = slot;
      }
    }
    list[index] = list.back();
    list.pop_back();
    if (room->members.empty()) rooms_.erase(room->name);
  }

  std::unordered_map<std::string, std::unique_ptr<Room<M>>> rooms_;
  Room<M> everyone_;
};

// Room sizes summed over I/O threads, for JS to read synchronously. Touched on join and leave
// only, never on the message path.
class RoomCounts {
 public:
  // True when the room appeared (0 to some) or went (to 0).
  bool add(const std::string& room, int delta) {
    std::lock_guard lock(mutex_);
    auto& n = counts_[room];
    const bool appeared = n == 0;
    n += delta;
    if (n == 0) {
      counts_.erase(room);
      return true;
    }
    return appeared;
  }
  std::uint64_t size(const std::string& room) const {
    std::lock_guard lock(mutex_);
    auto it = counts_.find(room);
    return it == counts_.end() ? 0 : it->second;
  }
  std::vector<std::pair<std::string, std::uint64_t>> all() const {
    std::lock_guard lock(mutex_);
    return {counts_.begin(), counts_.end()};
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::uint64_t> counts_;
};

}  // namespace sidewire
