// Testbench of the resilq accelerator for Vitis HLS csim_design / cosim_design (and g++ in the tests).
//
// Usage: accel_tb VECTOR_DIR [VECTOR_DIR...]   (directories written by resilq.hls.vectors)
// For each vector: give each of the three m_axi ports its own copy of the memory image, in a buffer of at
// least the port's declared co-simulation depth (AccelConfig::CosimDepth, the depth= of accel_top.cpp):
// C/RTL co-simulation treats every pointer argument as its own memory of `depth` elements, so ports that
// shared one buffer would overwrite each other's results when cosim copies them back, and a buffer smaller
// than the depth is read past. Load the critical table, call the top function with the register values of
// args.txt, then compare each port's buffer with expected.bin only where that port writes (regions.txt)
// and with the input image everywhere else, and the output registers with expect.txt. In C simulation the
// kernel also records the highest element each port touched (resilq/probe.hpp): it must lie inside the
// port's depth and its buffer. Prints one line per vector and a summary; returns non-zero on any mismatch.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "accel_config.hpp"
#include "resilq/accel.hpp"
#include "resilq/probe.hpp"
#include "resilq/regmap.hpp"

namespace {

bool read_file(const std::string& path, std::vector<uint8_t>& out) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    return true;
}

bool read_keys(const std::string& path, std::map<std::string, uint64_t>& out) {
    std::ifstream f(path);
    if (!f) return false;
    std::string key;
    uint64_t value;
    while (f >> key >> value) out[key] = value;
    return true;
}

struct Span {
    uint64_t offset, nbytes;
};

bool read_regions(const std::string& path, std::map<std::string, std::vector<Span>>& out) {
    std::ifstream f(path);
    if (!f) return false;
    std::string port;
    uint64_t offset, nbytes;
    while (f >> port >> offset >> nbytes) out[port].push_back(Span{offset, nbytes});
    return true;
}

// One m_axi port's memory: its own copy of the image, in a buffer of max(depth, image) elements of T.
template <class T>
struct PortMemory {
    const char* name;
    resilq::probe::Port port;
    uint64_t depth;  // declared co-simulation depth (elements)
    std::vector<T> data;

    PortMemory(const char* n, resilq::probe::Port p, uint64_t d, const std::vector<uint8_t>& image)
        : name(n), port(p), depth(d),
          data(std::max<uint64_t>(d, (image.size() + sizeof(T) - 1) / sizeof(T)), T(0)) {
        std::memcpy(data.data(), image.data(), image.size());
    }
    const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(data.data()); }
};

// Bytes of `mem` that differ from what they must hold: expected.bin inside the port's regions, the
// input image elsewhere (a port writing outside its regions is a mismatch too).
template <class T>
size_t compare_port(const std::string& dir, const PortMemory<T>& mem, const std::vector<uint8_t>& image,
                    const std::vector<uint8_t>& expected, const std::vector<Span>& spans, int& shown) {
    std::vector<uint8_t> written(image.size(), 0);
    for (const Span& s : spans) {
        for (uint64_t i = s.offset; i < s.offset + s.nbytes && i < written.size(); ++i) written[i] = 1;
    }
    size_t mismatches = 0;
    const uint8_t* got = mem.bytes();
    for (size_t i = 0; i < image.size(); ++i) {
        const uint8_t want = written[i] ? expected[i] : image[i];
        if (got[i] != want) {
            if (shown++ < 5) {
                std::printf("  %s: %s port byte %zu is %d, expected %d (%s)\n", dir.c_str(), mem.name, i, got[i], want,
                            written[i] ? "a result" : "untouched input");
            }
            ++mismatches;
        }
    }
    return mismatches;
}

// 0, or 1 (with a message) if the kernel touched an element beyond the port's depth or its buffer.
template <class T>
int check_extent(const std::string& dir, const PortMemory<T>& mem) {
    const resilq::probe::Extent e = resilq::probe::extents()[mem.port];
    const uint64_t end = e.reads > e.writes ? e.reads : e.writes;
    const uint64_t limit = mem.depth < mem.data.size() ? mem.depth : mem.data.size();
    std::printf("  %s: %s port touched %llu of %llu elements (depth %llu, buffer %zu)\n", dir.c_str(), mem.name,
                (unsigned long long)end, (unsigned long long)limit, (unsigned long long)mem.depth, mem.data.size());
    if (end <= limit) return 0;
    std::printf("  %s: %s port touched element %llu, beyond its declared depth %llu or its buffer of %zu\n",
                dir.c_str(), mem.name, (unsigned long long)(end - 1), (unsigned long long)mem.depth, mem.data.size());
    return 1;
}

// Runs one vector; returns the number of failed checks (printing the first few byte mismatches).
int run_vector(const std::string& dir) {
    std::vector<uint8_t> image, expected, table_bytes;
    std::map<std::string, uint64_t> args, expect;
    std::map<std::string, std::vector<Span>> regions;
    if (!read_file(dir + "/image.bin", image) || !read_file(dir + "/expected.bin", expected) ||
        !read_file(dir + "/table.bin", table_bytes) || !read_keys(dir + "/args.txt", args) ||
        !read_keys(dir + "/expect.txt", expect) || !read_regions(dir + "/regions.txt", regions) ||
        expected.size() != image.size()) {
        std::printf("FAIL %s: cannot read the vector files\n", dir.c_str());
        return 1;
    }
    using Depth = resilq::AccelConfig::CosimDepth;
    PortMemory<uint32_t> ctrl("ctrl", resilq::probe::CTRL, Depth::CTRL, image);
    PortMemory<uint64_t> weights("weights", resilq::probe::WEIGHTS, Depth::WEIGHTS, image);
    PortMemory<uint64_t> act("act", resilq::probe::ACT, Depth::ACT, image);
    std::vector<uint32_t> table(resilq::regmap::CRIT_TABLE_CAPACITY, 0);
    if (!table_bytes.empty()) std::memcpy(table.data(), table_bytes.data(), table_bytes.size());

    uint32_t version = 0, hw_config = 0, config_id = 0, status = 0, model_cycles_lo = 0, model_cycles_hi = 0;
    uint32_t corrections = 0, fi_hits = 0;
    resilq::probe::reset();
    resilq_accel(ctrl.data.data(), weights.data.data(), act.data.data(), uint32_t(args["n_images"]),
                 uint32_t(args["fi_ctrl"]), uint32_t(args["fi_layer"]), uint32_t(args["fi_slot"]),
                 uint32_t(args["fi_mask"]), uint32_t(args["fi_mode"]), uint32_t(args["fi_list"]),
                 uint32_t(args["fi_count"]), table.data(), &version, &hw_config, &config_id,
                 &status, &model_cycles_lo, &model_cycles_hi, &corrections, &fi_hits);

    int failures = 0, shown = 0;
    size_t mismatches = compare_port(dir, ctrl, image, expected, regions["ctrl"], shown);
    mismatches += compare_port(dir, weights, image, expected, regions["weights"], shown);
    mismatches += compare_port(dir, act, image, expected, regions["act"], shown);
    if (mismatches) ++failures;
    failures += check_extent(dir, ctrl) + check_extent(dir, weights) + check_extent(dir, act);
    const uint64_t cycles = uint64_t(model_cycles_lo) | (uint64_t(model_cycles_hi) << 32);
    const struct {
        const char* name;
        uint64_t got;
    } regs[] = {{"status", status},           {"cycles", cycles},   {"corrections", corrections},
                {"fi_hits", fi_hits},         {"version", version}, {"config_id", config_id}};
    for (const auto& r : regs) {
        if (expect.count(r.name) && expect[r.name] != r.got) {
            std::printf("  %s: register %s is %llu, expected %llu\n", dir.c_str(), r.name, (unsigned long long)r.got,
                        (unsigned long long)expect[r.name]);
            ++failures;
        }
    }
    std::printf("%s %s: %zu mismatching bytes of 3 x %zu, modelled cycles %llu, corrections %u, fi_hits %u\n",
                failures ? "FAIL" : "PASS", dir.c_str(), mismatches, image.size(), (unsigned long long)cycles,
                corrections, fi_hits);
    return failures;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::printf("usage: %s VECTOR_DIR [VECTOR_DIR...]\n", argv[0]);
        return 2;
    }
    int failed = 0;
    for (int i = 1; i < argc; ++i) failed += run_vector(argv[i]) ? 1 : 0;
    std::printf("%d of %d vectors passed\n", argc - 1 - failed, argc - 1);
    return failed ? 1 : 0;
}
