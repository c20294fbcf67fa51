// Testbench of the resilq accelerator for Vitis HLS csim_design / cosim_design (and g++ in the tests).
//
// Usage: accel_tb VECTOR_DIR [VECTOR_DIR...]   (directories written by resilq.hls.vectors)
// For each vector: load the memory image and the critical table, call the top function with the
// register values of args.txt, then compare the whole image with expected.bin (every layer's output
// from the IR executor, the per-layer cycle profile from the cycle model) and the output registers
// with expect.txt. Prints one line per vector and a summary; returns non-zero on any mismatch.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "resilq/accel.hpp"
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

// Runs one vector; returns the number of failed checks (printing the first few byte mismatches).
int run_vector(const std::string& dir) {
    std::vector<uint8_t> image_bytes, expected, table_bytes;
    std::map<std::string, uint64_t> args, expect;
    if (!read_file(dir + "/image.bin", image_bytes) || !read_file(dir + "/expected.bin", expected) ||
        !read_file(dir + "/table.bin", table_bytes) || !read_keys(dir + "/args.txt", args) ||
        !read_keys(dir + "/expect.txt", expect)) {
        std::printf("FAIL %s: cannot read the vector files\n", dir.c_str());
        return 1;
    }
    // 64-bit aligned storage for the three masters' views of the image
    std::vector<uint64_t> memory((image_bytes.size() + 7) / 8, 0);
    std::memcpy(memory.data(), image_bytes.data(), image_bytes.size());
    std::vector<uint32_t> table(resilq::regmap::CRIT_TABLE_CAPACITY, 0);
    if (!table_bytes.empty()) std::memcpy(table.data(), table_bytes.data(), table_bytes.size());
    uint8_t* base = reinterpret_cast<uint8_t*>(memory.data());

    uint32_t version = 0, hw_config = 0, config_id = 0, status = 0, cycles_lo = 0, cycles_hi = 0;
    uint32_t corrections = 0, fi_hits = 0;
    resilq_accel(reinterpret_cast<uint32_t*>(base), memory.data(), reinterpret_cast<int8_t*>(base),
                 uint32_t(args["n_images"]), uint32_t(args["fi_ctrl"]), uint32_t(args["fi_layer"]),
                 uint32_t(args["fi_slot"]), uint32_t(args["fi_mask"]), uint32_t(args["fi_mode"]), table.data(),
                 &version, &hw_config, &config_id, &status, &cycles_lo, &cycles_hi, &corrections, &fi_hits);

    int failures = 0, shown = 0;
    size_t mismatches = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
        if (base[i] != expected[i]) {
            if (shown++ < 5) std::printf("  %s: byte %zu is %d, expected %d\n", dir.c_str(), i, base[i], expected[i]);
            ++mismatches;
        }
    }
    if (mismatches) ++failures;
    const uint64_t cycles = uint64_t(cycles_lo) | (uint64_t(cycles_hi) << 32);
    const struct { const char* name; uint64_t got; } regs[] = {
        {"status", status}, {"cycles", cycles}, {"corrections", corrections}, {"fi_hits", fi_hits},
        {"version", version}, {"config_id", config_id}};
    for (const auto& r : regs) {
        if (expect.count(r.name) && expect[r.name] != r.got) {
            std::printf("  %s: register %s is %llu, expected %llu\n", dir.c_str(), r.name, (unsigned long long)r.got,
                        (unsigned long long)expect[r.name]);
            ++failures;
        }
    }
    std::printf("%s %s: %zu mismatching bytes of %zu, cycles %llu, corrections %u, fi_hits %u\n",
                failures ? "FAIL" : "PASS", dir.c_str(), mismatches, expected.size(), (unsigned long long)cycles,
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
