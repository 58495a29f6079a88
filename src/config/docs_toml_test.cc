// Every TOML snippet in README.md and docs/*.md (```toml fenced blocks) is loaded through the
// real configuration loader, and every `backend = "..."` the docs mention names a backend this
// build knows. A failure names the file and line. A block preceded by the line
// `<!-- toml: fragment -->` is a deliberate excerpt and is skipped; keep those few.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "cachekit/caches.h"

namespace cachekit {
namespace {

namespace fs = std::filesystem;

struct Snippet {
  std::string where;  // "docs/redis.md:8"
  std::string text;
};

std::vector<fs::path> documents() {
  const fs::path root = CACHEKIT_SOURCE_DIR;
  std::vector<fs::path> out{root / "README.md"};
  for (const auto& e : fs::directory_iterator(root / "docs")) {
    if (e.path().extension() == ".md") out.push_back(e.path());
  }
  return out;
}

std::string shown_path(const fs::path& p) { return fs::relative(p, CACHEKIT_SOURCE_DIR).string(); }

std::vector<Snippet> toml_blocks(const fs::path& doc) {
  std::ifstream in(doc);
  std::vector<Snippet> out;
  std::string line, previous;
  int number = 0;
  Snippet* open = nullptr;
  bool skipping = false;
  while (std::getline(in, line)) {
    ++number;
    if (open == nullptr && !skipping && line.starts_with("```toml")) {
      if (previous.find("<!-- toml: fragment -->") != std::string::npos) {
        skipping = true;
      } else {
        out.push_back({shown_path(doc) + ":" + std::to_string(number), ""});
        open = &out.back();
      }
    } else if ((open != nullptr || skipping) && line.starts_with("```")) {
      open = nullptr;
      skipping = false;
    } else if (open != nullptr) {
      open->text += line + "\n";
    }
    if (!line.empty()) previous = line;
  }
  return out;
}

TEST(DocsToml, EveryFencedSnippetLoads) {
  char pattern[] = "/tmp/cachekit-docs-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const fs::path dir = pattern;
  int loaded = 0;
  for (const fs::path& doc : documents()) {
    for (const Snippet& s : toml_blocks(doc)) {
      const fs::path file = dir / "cachekit.toml";
      std::ofstream(file) << s.text;
      try {
        (void)Caches::from_file(file);
        ++loaded;
      } catch (const std::exception& e) {
        ADD_FAILURE() << s.where << ": the snippet does not load: " << e.what();
      }
    }
  }
  fs::remove_all(dir);
  EXPECT_GE(loaded, 7) << "fewer snippets than the docs hold: is the extraction broken?";
}

TEST(DocsToml, EveryBackendNamedInTheDocsExists) {
  const auto names = BackendRegistry::with_builtins().names();
  const std::regex backend_setting(R"(backend\s*=\s*\"([A-Za-z0-9_]+)\")");
  for (const fs::path& doc : documents()) {
    std::ifstream in(doc);
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      for (std::sregex_iterator m(line.begin(), line.end(), backend_setting), end; m != end; ++m) {
        const std::string name = (*m)[1];
        EXPECT_NE(std::find(names.begin(), names.end(), name), names.end())
            << shown_path(doc) << ":" << number << ": backend \"" << name
            << "\" is not a backend the configuration accepts";
      }
    }
  }
}

}  // namespace
}  // namespace cachekit
