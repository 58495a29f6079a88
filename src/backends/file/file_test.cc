// File-backend specifics. The behaviour every backend shares is in tests/conformance; this
// suite covers what only a directory of files can get wrong: the on-disk format, restarts,
// damaged and foreign files, culling, temporaries, other processes, and the directory itself.
#include "cachekit/backends/file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/status_matchers.h"

#define XXH_INLINE_ALL  // the test computes file names itself, without linking libxxhash
#include <xxhash.h>

namespace cachekit {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The documented file layout, built independently of the backend.
std::string encode(std::string_view key, std::string_view value, std::int64_t expiry_ms,
                   std::string_view magic = "CKC1") {
  std::string out(magic);
  const auto put = [&out](std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  };
  put(static_cast<std::uint64_t>(expiry_ms), 8);
  put(key.size(), 4);
  put(value.size(), 8);
  return out.append(key).append(value);
}

std::string file_name(std::string_view key) {
  const XXH128_hash_t h = XXH3_128bits(key.data(), key.size());
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return std::string(hex) + ".ckc";
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, std::string_view bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), std::ssize(bytes));
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

class FileBackend : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(::testing::TempDir()) / "cachekit-file-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dir_ = root_ / "cache";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::shared_ptr<Backend> make(std::size_t max_entries = 300, unsigned cull_frequency = 3) {
    FileOptions options;
    options.directory = dir_;
    options.max_entries = max_entries;
    options.cull_frequency = cull_frequency;
    options.clock = &clock_;
    auto backend = make_file_backend(options);
    EXPECT_OK(backend);
    return backend.ok() ? *backend : nullptr;
  }

  Expiry in(milliseconds d) const { return Expiry::at(clock_.now() + d); }
  fs::path path_of(std::string_view key) const { return dir_ / file_name(key); }

  // Names in the cache directory that satisfy `keep`, sorted.
  std::vector<std::string> names(const std::function<bool(const std::string&)>& keep) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (keep(e.path().filename().string())) out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<std::string> entry_files() const {
    return names([](const std::string& n) {
      return n.size() == 36 && n.ends_with(".ckc") && n.find_first_not_of("0123456789abcdef") == 32;
    });
  }
  std::vector<std::string> temp_files() const {
    return names([](const std::string& n) { return n.starts_with(".ckc-tmp-"); });
  }

  static std::optional<std::string> value(Backend& b, std::string_view key) {
    auto v = b.get(key);
    EXPECT_OK(v);
    if (!v.ok() || !v->has_value()) return std::nullopt;
    return (*v)->str();
  }

  ManualClock clock_;
  fs::path root_;
  fs::path dir_;
};

TEST_F(FileBackend, EntriesSurviveARestart) {
  {
    auto first = make();
    ASSERT_OK(first->set("forever", "a", Expiry::never()));
    ASSERT_OK(first->set("timed", "b", in(seconds(60))));
  }
  auto second = make();
  EXPECT_EQ(value(*second, "forever"), "a");
  EXPECT_EQ(value(*second, "timed"), "b");
  EXPECT_EQ(*second->ttl("timed"), Ttl::after(seconds(60)));
  EXPECT_EQ(*second->ttl("forever"), Ttl::never());
}

TEST_F(FileBackend, EntryFileIsNamedByKeyHashAndUsesTheDocumentedLayout) {
  auto b = make();
  const Expiry expiry = in(seconds(5));
  ASSERT_OK(b->set(":1:k", "value", expiry));
  ASSERT_OK(b->set(":1:never", "", Expiry::never()));
  EXPECT_EQ(read_file(path_of(":1:k")), encode(":1:k", "value", expiry.epoch_ms()));
  EXPECT_EQ(read_file(path_of(":1:never")), encode(":1:never", "", -1));
  EXPECT_EQ(entry_files().size(), 2u);
}

TEST_F(FileBackend, DamagedOrForeignFilesAreMissesAndAreRemoved) {
  const std::string good = encode("k", "value", -1);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"short header", good.substr(0, 10)},
      {"bad magic", encode("k", "value", -1, "XXXX")},
      {"truncated value", good.substr(0, good.size() - 1)},
      {"trailing bytes", good + "!"},
      {"key size past the end", encode("k", "", -1).substr(0, 24)},
      {"another key", encode("not-k", "value", -1)},
  };
  auto b = make();
  for (const auto& [name, bytes] : cases) {
    SCOPED_TRACE(name);
    ASSERT_OK(b->set("k", "old", Expiry::never()));
    write_file(path_of("k"), bytes);
    EXPECT_EQ(value(*b, "k"), std::nullopt);  // reads key and value
    EXPECT_FALSE(fs::exists(path_of("k")));
    write_file(path_of("k"), bytes);
    EXPECT_FALSE(*b->contains("k"));  // reads the header and key only
    EXPECT_FALSE(fs::exists(path_of("k")));
  }
  write_file(path_of("k"), good);  // the control: the same path with intact bytes is a hit
  EXPECT_EQ(value(*b, "k"), "value");
}

TEST_F(FileBackend, DamagedFilesAreMissesForEveryOperation) {
  auto b = make();
  const auto damage = [&] {
    ASSERT_OK(b->set("k", "1", Expiry::never()));
    write_file(path_of("k"), "garbage");
  };
  damage();
  EXPECT_FALSE(*b->contains("k"));
  EXPECT_FALSE(fs::exists(path_of("k")));
  damage();
  EXPECT_EQ(*b->ttl("k"), Ttl::missing());
  EXPECT_FALSE(fs::exists(path_of("k")));
  damage();
  EXPECT_STATUS(b->incr("k", 1), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(path_of("k")));
  damage();
  EXPECT_FALSE(*b->touch("k", Expiry::never()));
  EXPECT_FALSE(fs::exists(path_of("k")));
  damage();
  EXPECT_FALSE(*b->erase("k"));
  EXPECT_FALSE(fs::exists(path_of("k")));
  damage();
  EXPECT_TRUE(*b->add("k", "new", Expiry::never()));
  EXPECT_EQ(value(*b, "k"), "new");
  damage();
  EXPECT_EQ(*b->keys("*"), std::vector<std::string>{});
}

TEST_F(FileBackend, ClearRemovesOnlyCacheFilesAndKeepsTheDirectory) {
  auto b = make();
  ASSERT_OK(b->set("a", "1", Expiry::never()));
  ASSERT_OK(b->set("b", "2", Expiry::never()));
  const std::string upper_hex = "0123456789ABCDEF0123456789ABCDEF.ckc";
  for (const std::string name : {"notes.txt", "short.ckc", upper_hex.c_str()}) {
    write_file(dir_ / name, "keep me");
  }
  fs::create_directory(dir_ / "sub");
  write_file(dir_ / "sub" / file_name("a"), encode("a", "1", -1));
  write_file(dir_ / ".ckc-tmp-abcdef", "left by a crash");

  ASSERT_OK(b->clear());
  EXPECT_TRUE(entry_files().empty());
  EXPECT_TRUE(temp_files().empty());
  EXPECT_TRUE(fs::is_directory(dir_));
  for (const std::string name : {"notes.txt", "short.ckc", upper_hex.c_str()}) {
    EXPECT_EQ(read_file(dir_ / name), "keep me") << name;
  }
  EXPECT_TRUE(fs::exists(dir_ / "sub" / file_name("a")));
  EXPECT_EQ(value(*b, "a"), std::nullopt);
}

TEST_F(FileBackend, CullRemovesExpiredEntriesFirst) {
  auto b = make(/*max_entries=*/5, /*cull_frequency=*/2);
  for (int i = 0; i < 5; ++i) {  // one second apart; k1 and k3 expire, k0 is the oldest
    clock_.advance(seconds(1));
    const Expiry e = (i == 1 || i == 3) ? in(seconds(10)) : Expiry::never();
    ASSERT_OK(b->set("k" + std::to_string(i), "v", e));
  }
  clock_.advance(seconds(11));
  ASSERT_OK(b->set("new", "v", Expiry::never()));
  EXPECT_FALSE(fs::exists(path_of("k1")));
  EXPECT_FALSE(fs::exists(path_of("k3")));
  for (const char* live : {"k0", "k2", "k4", "new"}) {
    EXPECT_TRUE(fs::exists(path_of(live))) << live;
  }
}

TEST_F(FileBackend, CullRemovesLeastRecentlyWrittenEntriesFirst) {
  auto b = make(/*max_entries=*/6, /*cull_frequency=*/3);
  for (int i : {3, 0, 5, 1, 4, 2}) {  // written in this order, one second apart
    clock_.advance(seconds(1));
    ASSERT_OK(b->set("k" + std::to_string(i), "v", Expiry::never()));
  }
  clock_.advance(seconds(1));
  ASSERT_OK(b->set("k6", "v", Expiry::never()));  // full: 6 / 3 = 2 oldest go
  EXPECT_FALSE(fs::exists(path_of("k3")));
  EXPECT_FALSE(fs::exists(path_of("k0")));
  for (const char* kept : {"k5", "k1", "k4", "k2", "k6"}) {
    EXPECT_TRUE(fs::exists(path_of(kept))) << kept;
  }
}

TEST_F(FileBackend, CullFrequencyZeroEmptiesTheCache) {
  auto b = make(/*max_entries=*/3, /*cull_frequency=*/0);
  for (const char* k : {"a", "b", "c"}) ASSERT_OK(b->set(k, "v", Expiry::never()));
  ASSERT_OK(b->set("d", "v", Expiry::never()));
  EXPECT_EQ(entry_files(), std::vector<std::string>{file_name("d")});
}

TEST_F(FileBackend, OverwritingAKeyInAFullCacheDoesNotCull) {
  auto b = make(/*max_entries=*/3, /*cull_frequency=*/0);
  for (const char* k : {"a", "b", "c"}) ASSERT_OK(b->set(k, "v", Expiry::never()));
  ASSERT_OK(b->set("b", "v2", Expiry::never()));
  EXPECT_EQ(entry_files().size(), 3u);
  EXPECT_EQ(value(*b, "b"), "v2");
}

TEST_F(FileBackend, FileCountStaysBounded) {
  auto b = make(/*max_entries=*/20, /*cull_frequency=*/3);
  for (int i = 0; i < 300; ++i) {
    clock_.advance(milliseconds(1));
    ASSERT_OK(b->set("k" + std::to_string(i), "v", Expiry::never()));
    ASSERT_LE(entry_files().size(), 20u) << "after write " << i;
  }
  EXPECT_EQ(value(*b, "k299"), "v");  // the newest entry always survives
}

TEST_F(FileBackend, CullCountsEntriesWrittenByAnotherInstance) {
  auto other = make(/*max_entries=*/5, /*cull_frequency=*/5);  // as another process would be
  auto writer = make(/*max_entries=*/5, /*cull_frequency=*/5);
  ASSERT_OK(other->set("k0", "v", Expiry::never()));
  for (int i = 1; i < 5; ++i) {
    clock_.advance(seconds(1));
    ASSERT_OK(writer->set("k" + std::to_string(i), "v", Expiry::never()));
  }
  ASSERT_OK(other->set("new", "v", Expiry::never()));  // sees 5, not its own 1
  EXPECT_EQ(entry_files().size(), 5u);
  EXPECT_FALSE(fs::exists(path_of("k0")));
}

TEST_F(FileBackend, FilesRemovedBehindTheCachesBackAreNotCountedAtCullTime) {
  auto b = make(/*max_entries=*/5, /*cull_frequency=*/0);
  for (int i = 0; i < 5; ++i) ASSERT_OK(b->set("k" + std::to_string(i), "v", Expiry::never()));
  fs::remove(path_of("k0"));
  fs::remove(path_of("k1"));
  ASSERT_OK(b->set("new", "v", Expiry::never()));  // 3 files really: no cull needed
  EXPECT_EQ(entry_files().size(), 4u);
  EXPECT_EQ(value(*b, "k4"), "v");
}

TEST_F(FileBackend, NoTemporaryFilesAreLeftBehind) {
  auto b = make(/*max_entries=*/4, /*cull_frequency=*/2);
  for (int i = 0; i < 20; ++i) {
    const std::string k = "k" + std::to_string(i % 6);
    ASSERT_OK(b->set(k, "1", in(seconds(30))));
    ASSERT_OK(b->add(k, "2", Expiry::never()));
    ASSERT_OK(b->add("fresh" + std::to_string(i), "2", Expiry::never()));
    const auto n = b->incr(k, 1);  // culling may have taken k: kNotFound is fine
    ASSERT_TRUE(n.ok() || n.code() == StatusCode::kNotFound) << n.status().to_string();
    ASSERT_OK(b->touch(k, in(seconds(60))));
    ASSERT_OK(b->set(k, "1", in(milliseconds(-1))));
  }
  EXPECT_EQ(temp_files(), std::vector<std::string>{});
  EXPECT_FALSE(entry_files().empty());
}

TEST_F(FileBackend, FailedWriteReportsAnErrorAndRemovesItsTemporary) {
  auto b = make();
  ASSERT_OK(b->set("k", "v", Expiry::never()));
  fs::remove(path_of("k"));
  fs::create_directory(path_of("k"));  // rename over a directory fails
  write_file(path_of("k") / "inside", "x");
  const Status s = b->set("k", "v", Expiry::never());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path_of("k").string()), std::string::npos) << s.message();
  EXPECT_EQ(temp_files(), std::vector<std::string>{});
  EXPECT_EQ(value(*b, "k"), std::nullopt);
  EXPECT_TRUE(fs::exists(path_of("k") / "inside"));  // never someone else's files
}

TEST_F(FileBackend, DeletedDirectoryIsRecreatedByTheNextWrite) {
  auto b = make();
  ASSERT_OK(b->set("before", "1", Expiry::never()));
  fs::remove_all(dir_);
  EXPECT_EQ(value(*b, "before"), std::nullopt);
  ASSERT_OK(b->set("after", "2", Expiry::never()));
  EXPECT_EQ(value(*b, "after"), "2");
  EXPECT_EQ(mode_of(dir_), 0700u);
  EXPECT_EQ(*b->incr("after", 1), 3);  // the lock file was recreated too
}

TEST_F(FileBackend, CreatesMissingParentsWithMode0700) {
  dir_ = root_ / "a" / "b" / "c";
  ASSERT_NE(make(), nullptr);
  EXPECT_EQ(mode_of(root_ / "a"), 0700u);
  EXPECT_EQ(mode_of(root_ / "a" / "b"), 0700u);
  EXPECT_EQ(mode_of(root_ / "a" / "b" / "c"), 0700u);
}

TEST_F(FileBackend, RefusesAPathThatIsNotADirectory) {
  write_file(root_ / "file", "x");
  for (const fs::path& p : {root_ / "file", root_ / "file" / "sub"}) {
    FileOptions options;
    options.directory = p;
    auto b = make_file_backend(options);
    ASSERT_STATUS(b, StatusCode::kInvalidArgument) << p;
    EXPECT_NE(b.status().message().find(p.string()), std::string::npos) << b.status().message();
  }
}

TEST_F(FileBackend, ExpiryFollowsTheInjectedClockAndExpiredFilesAreRemoved) {
  auto b = make();
  ASSERT_OK(b->set("k", "v", in(seconds(10))));
  clock_.advance(milliseconds(9999));
  EXPECT_EQ(value(*b, "k"), "v");
  EXPECT_EQ(*b->ttl("k"), Ttl::after(milliseconds(1)));
  clock_.advance(milliseconds(1));
  EXPECT_TRUE(fs::exists(path_of("k")));  // removal is lazy ...
  EXPECT_EQ(value(*b, "k"), std::nullopt);
  EXPECT_FALSE(fs::exists(path_of("k")));  // ... on the first read that sees it expired
}

TEST_F(FileBackend, IncrKeepsTheExpiryAndStoresDecimalText) {
  auto b = make();
  const Expiry expiry = in(seconds(10));
  ASSERT_OK(b->set("n", "41", expiry));
  clock_.advance(seconds(4));
  EXPECT_EQ(*b->incr("n", 1), 42);
  EXPECT_EQ(read_file(path_of("n")), encode("n", "42", expiry.epoch_ms()));
  EXPECT_EQ(*b->ttl("n"), Ttl::after(seconds(6)));
  EXPECT_EQ(*make()->incr("n", -50), -8);  // a second instance sees and keeps the same state
}

TEST_F(FileBackend, PastExpiriesRemoveTheFile) {
  auto b = make();
  ASSERT_OK(b->set("k", "v", Expiry::never()));
  ASSERT_OK(b->set("k", "v", in(milliseconds(0))));
  EXPECT_FALSE(fs::exists(path_of("k")));
  ASSERT_OK(b->set("k", "v", Expiry::never()));
  EXPECT_TRUE(*b->touch("k", in(milliseconds(-5))));
  EXPECT_FALSE(fs::exists(path_of("k")));
  EXPECT_TRUE(*b->add("k", "v", in(milliseconds(0))));
  EXPECT_FALSE(fs::exists(path_of("k")));
}

// A clock that runs a callback once, on its n-th read from now: a seam to run another
// process's step at an exact point inside an operation, without threads or sleeps.
class InterleavingClock final : public Clock {
 public:
  [[nodiscard]] TimePoint now() const noexcept override {
    if (step_ && --reads_left_ == 0) std::exchange(step_, nullptr)();
    return time.now();
  }
  void run_on_read(int n, std::function<void()> step) {
    reads_left_ = n;
    step_ = std::move(step);
  }
  ManualClock time;

 private:
  mutable int reads_left_ = 0;
  mutable std::function<void()> step_;
};

TEST_F(FileBackend, LazyRemovalSparesAFileReplacedSinceItWasRead) {
  InterleavingClock clock;
  FileOptions options;
  options.directory = dir_;
  options.clock = &clock;
  auto reader = *make_file_backend(options);
  auto writer = make();
  ASSERT_OK(reader->set("k", "old", Expiry::at(clock.time.now() + seconds(1))));
  clock.time.advance(seconds(2));
  // get() reads the expired file, then checks the time: the writer replaces it right then.
  clock.run_on_read(1, [&] { EXPECT_OK(writer->set("k", "new", Expiry::never())); });
  EXPECT_EQ(value(*reader, "k"), std::nullopt);
  EXPECT_EQ(value(*reader, "k"), "new");
}

TEST_F(FileBackend, SetRacingClearCountsAsDoneBeforeTheClear) {
  InterleavingClock clock;
  FileOptions options;
  options.directory = dir_;
  options.clock = &clock;
  auto b = *make_file_backend(options);
  auto other = make();
  // set() reads the time to check the expiry, then to stamp its temporary: the other
  // instance clears right then, between the temporary's creation and its rename.
  clock.run_on_read(2, [&] { EXPECT_OK(other->clear()); });
  EXPECT_OK(b->set("k", "v", Expiry::never()));
  EXPECT_EQ(value(*b, "k"), std::nullopt);
  EXPECT_EQ(temp_files(), std::vector<std::string>{});
}

TEST_F(FileBackend, KeysListsLiveKeysMatchingThePattern) {
  auto b = make();
  for (const char* k : {"a:1", "a:2", "b:1"}) ASSERT_OK(b->set(k, "v", Expiry::never()));
  ASSERT_OK(b->set("a:3", "v", in(seconds(1))));
  clock_.advance(seconds(1));
  EXPECT_EQ(*b->keys("a:*"), (std::vector<std::string>{"a:1", "a:2"}));
  EXPECT_EQ(make()->keys("*")->size(), 3u);  // read back from the files, not from memory
}

TEST_F(FileBackend, StatsReportEntriesBytesAndDirectory) {
  auto b = make();
  ASSERT_OK(b->set("k", "value", Expiry::never()));
  ASSERT_OK(b->set("k2", "", Expiry::never()));
  auto stats = b->stats();
  ASSERT_OK(stats);
  const auto get = [&](std::string_view name) {
    for (const auto& [n, v] : *stats) {
      if (n == name) return v;
    }
    return std::string("<absent>");
  };
  EXPECT_EQ(get("entries"), "2");
  EXPECT_EQ(get("bytes"), std::to_string(encode("k", "value", -1).size() + 24 + 2));
  EXPECT_EQ(get("directory"), dir_.string());
}

TEST_F(FileBackend, InfoDeclaresAPersistentListableStore) {
  auto b = make();
  const BackendInfo& info = b->info();
  EXPECT_EQ(info.name, "file");
  EXPECT_TRUE(info.stores_values);
  EXPECT_TRUE(info.outlives_process);
  EXPECT_TRUE(info.supports_keys);
  EXPECT_TRUE(info.supports_stats);
  EXPECT_EQ(info.key_policy, KeyPolicy::kWarn);
}

// Runs `body(i)` in `n` child processes released at the same moment; returns (pid, exit code).
std::vector<std::pair<pid_t, int>> run_in_children(int n, const std::function<int(int)>& body) {
  std::array<int, 2> gate{};
  if (::pipe(gate.data()) != 0) return {};
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(gate[1]);
      char c;
      (void)!::read(gate[0], &c, 1);  // returns 0 once the parent closes its end
      ::_exit(body(i));
    }
    pids.push_back(pid);
  }
  ::close(gate[0]);
  ::close(gate[1]);
  std::vector<std::pair<pid_t, int>> results;
  for (const pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    results.emplace_back(pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  return results;
}

TEST_F(FileBackend, IncrementsFromManyProcessesAreExact) {
  constexpr int kProcesses = 4;
  constexpr int kIncrements = 200;
  auto b = make();  // created before fork: children must not share its lock
  ASSERT_OK(b->set("n", "0", Expiry::never()));
  const auto results = run_in_children(kProcesses, [&](int) {
    for (int i = 0; i < kIncrements; ++i) {
      if (!b->incr("n", 1).ok()) return 1;
    }
    return 0;
  });
  for (const auto& [pid, code] : results) EXPECT_EQ(code, 0) << pid;
  EXPECT_EQ(value(*b, "n"), std::to_string(kProcesses * kIncrements));
}

TEST_F(FileBackend, ExactlyOneProcessWinsAnAddRace) {
  ASSERT_NE(make(), nullptr);
  for (int round = 0; round < 10; ++round) {
    const std::string key = "race" + std::to_string(round);
    const auto results = run_in_children(6, [&](int) {
      auto mine = make();  // each process with its own backend, as separate workers would be
      auto added = mine->add(key, std::to_string(::getpid()), Expiry::never());
      return !added.ok() ? 2 : (*added ? 0 : 1);
    });
    ASSERT_EQ(results.size(), 6u);
    const auto winners =
        std::count_if(results.begin(), results.end(), [](const auto& r) { return r.second == 0; });
    const auto losers =
        std::count_if(results.begin(), results.end(), [](const auto& r) { return r.second == 1; });
    ASSERT_EQ(winners, 1) << key;
    ASSERT_EQ(losers, 5) << key;
    const auto winner =
        std::find_if(results.begin(), results.end(), [](const auto& r) { return r.second == 0; });
    EXPECT_EQ(value(*make(), key), std::to_string(winner->first));
  }
}

TEST_F(FileBackend, ConcurrentIncrementsFromThreadsAreExact) {
  auto a = make();
  auto b = make();  // a second instance: flock, not only the mutex, must exclude it
  ASSERT_OK(a->set("n", "0", Expiry::never()));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, backend = t % 2 == 0 ? a : b] {
      for (int i = 0; i < 100; ++i) {
        if (!backend->incr("n", 1).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(value(*a, "n"), "400");
}

TEST_F(FileBackend, ConcurrentReadersNeverSeeTornValues) {
  auto b = make();
  // Value i is i+1 KiB of the letter 'a'+i: a reader can tell a mix of two writes apart.
  const auto make_value = [](int i) { return std::string(1024 * (i + 1), char('a' + i)); };
  ASSERT_OK(b->set("k", make_value(0), Expiry::never()));
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::atomic<int> misses{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 200; ++i) (void)b->set("k", make_value((i + w) % 8), Expiry::never());
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        auto v = b->get("k");
        if (!v.ok() || !v->has_value()) {
          ++misses;
          continue;
        }
        const std::string_view s = (*v)->view();
        if (s.empty() || s != make_value(s[0] - 'a')) ++torn;
      }
    });
  }
  threads[0].join();
  threads[1].join();
  stop = true;
  threads[2].join();
  threads[3].join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(misses.load(), 0);  // a rename never leaves the key absent
}

}  // namespace
}  // namespace cachekit
