// Force-included into the project sources the fuzz targets compile (tests/fuzz/CMakeLists.txt):
// standard headers that the normal build's precompiled header (models/torch_pch.h) brings into
// every translation unit, so that a source relying on them implicitly still compiles here.
// Only standard headers: this does not pull in LibTorch.
#pragma once
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
