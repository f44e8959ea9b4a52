// The local adapter (adapter/local.hpp) that Socket.IO namespaces and raw channels share:
// membership, the sizes summed over threads, and selections.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "adapter/local.hpp"

namespace {

using sidewire::Membership;

struct Member {
  int id = 0;
  bool ready = true;
  std::vector<Membership<Member>> rooms;
  std::uint32_t everyone = 0;
  std::uint32_t stamp = 0;

  std::vector<Membership<Member>>& memberships() { return rooms; }
  std::uint32_t& everyone_slot() { return everyone; }
  std::uint32_t& mark() { return stamp; }
  bool selectable() const { return ready; }
};

using Adapter = sidewire::adapter::LocalAdapter<Member>;
using Names = std::vector<std::string>;

std::vector<int> chosen(Adapter& a, unsigned t, const Names& rooms, const Names& except) {
  std::vector<int> ids;
  a.select(t, rooms, except, [&](Member& m) { ids.push_back(m.id); });
  std::sort(ids.begin(), ids.end());
  return ids;
}

// n members with ids 0..n-1, added on thread 0 (the vector is never resized after).
std::vector<Member> added(Adapter& a, int n) {
  std::vector<Member> m(n);
  for (int i = 0; i < n; ++i) {
    m[i].id = i;
    a.add(0, &m[i]);
  }
  return m;
}

TEST(LocalAdapter, SelectsTheUnionOfRoomsOnceMinusExcept) {
  Adapter a(1);
  std::vector<Member> m = added(a, 5);
  EXPECT_EQ(a.join(0, &m[0], "a", 10), Adapter::Joined::kJoined);
  a.join(0, &m[1], "a", 10);
  a.join(0, &m[1], "b", 10);
  a.join(0, &m[2], "b", 10);
  a.join(0, &m[3], "c", 10);
  EXPECT_EQ(chosen(a, 0, {}, {}), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(chosen(a, 0, {"a", "b"}, {}), (std::vector<int>{0, 1, 2}));  // 1 is in both, chosen once
  EXPECT_EQ(chosen(a, 0, {"a", "b"}, {"b"}), (std::vector<int>{0}));
  EXPECT_EQ(chosen(a, 0, {}, {"a", "c"}), (std::vector<int>{2, 4}));
  EXPECT_EQ(chosen(a, 0, {"nobody"}, {}), (std::vector<int>{}));
  // A member that may not receive is left out of rooms.
  m[2].ready = false;
  EXPECT_EQ(chosen(a, 0, {"b"}, {}), (std::vector<int>{1}));
}

TEST(LocalAdapter, ResolvesNamesThatAreNoRoom) {
  Adapter a(1);
  std::vector<Member> m = added(a, 3);
  a.join(0, &m[0], "a", 10);
  // A name such as a socket's own id stands for that member.
  auto by_id = [&](const std::string& name, auto&& g) {
    if (name.size() == 3 && name.rfind("id", 0) == 0) g(&m[name[2] - '0']);
  };
  std::vector<int> ids;
  a.select(0, {"a", "id2", "id0"}, {}, by_id, [&](Member& x) { ids.push_back(x.id); });
  EXPECT_EQ(ids, (std::vector<int>{0, 2}));
  ids.clear();
  a.select(0, {}, {"id1"}, by_id, [&](Member& x) { ids.push_back(x.id); });
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<int>{0, 2}));
}

TEST(LocalAdapter, CountsRoomsOverThreadsAndTellsWhenOneAppearsOrGoes) {
  std::vector<std::string> changes;
  Adapter a(2, [&](const std::string& room) { changes.push_back(room); });
  Member x{1}, y{2}, z{3};
  a.add(0, &x);
  a.add(1, &y);
  a.add(1, &z);
  a.join(0, &x, "doc", 10);
  a.join(1, &y, "doc", 10);
  EXPECT_EQ(a.join(1, &y, "doc", 10), Adapter::Joined::kAlready);
  EXPECT_EQ(a.size("doc"), 2u);
  EXPECT_EQ(changes, (Names{"doc"}));
  // Each thread selects its own members only.
  EXPECT_EQ(chosen(a, 0, {"doc"}, {}), (std::vector<int>{1}));
  EXPECT_EQ(chosen(a, 1, {"doc"}, {}), (std::vector<int>{2}));
  EXPECT_TRUE(a.leave(0, &x, "doc"));
  EXPECT_FALSE(a.leave(0, &x, "doc"));
  EXPECT_EQ(a.size("doc"), 1u);
  a.remove(1, &y);
  EXPECT_EQ(a.size("doc"), 0u);
  EXPECT_EQ(changes, (Names{"doc", "doc"}));
  EXPECT_TRUE(a.rooms().empty());
  EXPECT_EQ(chosen(a, 1, {}, {}), (std::vector<int>{3}));
}

TEST(LocalAdapter, AnUncountedRoomIsSelectedButNotCounted) {
  std::vector<std::string> changes;
  Adapter a(1, [&](const std::string& room) { changes.push_back(room); });
  Member x{1};
  a.add(0, &x);
  EXPECT_EQ(a.join(0, &x, "old-id", SIZE_MAX, false), Adapter::Joined::kJoined);
  EXPECT_EQ(a.size("old-id"), 0u);
  EXPECT_EQ(chosen(a, 0, {"old-id"}, {}), (std::vector<int>{1}));
  EXPECT_TRUE(a.leave(0, &x, "old-id"));  // leaving it does not count down
  a.join(0, &x, "old-id", SIZE_MAX, false);
  a.join(0, &x, "room", 10);
  a.remove(0, &x);
  EXPECT_TRUE(a.rooms().empty());
  EXPECT_EQ(changes, (Names{"room", "room"}));
}

TEST(LocalAdapter, RefusesAJoinOverTheLimit) {
  Adapter a(1);
  Member x{1};
  a.add(0, &x);
  EXPECT_EQ(a.join(0, &x, "a", 2), Adapter::Joined::kJoined);
  EXPECT_EQ(a.join(0, &x, "b", 2), Adapter::Joined::kJoined);
  EXPECT_EQ(a.join(0, &x, "c", 2), Adapter::Joined::kTooMany);
  EXPECT_EQ(a.join(0, &x, "a", 2), Adapter::Joined::kAlready);
  EXPECT_EQ(Adapter::room_count(x), 2u);
  EXPECT_FALSE(a.is_member(0, &x, "c"));
}

TEST(LocalAdapter, PeersAreEveryoneSharingARoomOnceWithoutTheSender) {
  Adapter a(1);
  std::vector<Member> m = added(a, 5);
  for (const char* r : {"a", "b"}) {
    a.join(0, &m[0], r, 10);
    a.join(0, &m[1], r, 10);  // shares both with 0: gets a relayed message once
  }
  a.join(0, &m[2], "b", 10);
  a.join(0, &m[3], "c", 10);
  std::vector<int> ids;
  a.select_peers(0, &m[0], [&](Member& p) { ids.push_back(p.id); });
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<int>{1, 2}));
  Names names;
  Adapter::each_room(m[0], [&](const std::string& n) { names.push_back(n); });
  EXPECT_EQ(names, (Names{"a", "b"}));
}

TEST(LocalAdapter, MembersLeavingFromTheMiddleKeepTheRestReachable) {
  Adapter a(1);
  std::vector<Member> m = added(a, 50);
  for (int i = 0; i < 50; ++i) {
    a.join(0, &m[i], "r", 10);
    a.join(0, &m[i], i % 2 ? "odd" : "even", 10);
  }
  std::vector<int> left;
  for (int i = 0; i < 50; ++i) {
    if (i % 3 == 0) {
      a.remove(0, &m[i]);
    } else if (i % 3 == 1) {
      a.leave(0, &m[i], "r");
    } else {
      left.push_back(i);
    }
  }
  EXPECT_EQ(chosen(a, 0, {"r"}, {}), left);
  EXPECT_EQ(a.size("r"), left.size());
  std::vector<int> odd;
  for (int i = 0; i < 50; ++i) {
    if (i % 3 != 0 && i % 2) odd.push_back(i);
  }
  EXPECT_EQ(chosen(a, 0, {"odd"}, {}), odd);
  EXPECT_EQ(chosen(a, 0, {}, {}).size(), 50u - 17u);
}

}  // namespace
