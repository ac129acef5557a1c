// Precompiled header shared by every ropex target: the expensive, stable includes.
// Only third-party headers belong here; project headers change too often.
#pragma once
#include <torch/torch.h>
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
