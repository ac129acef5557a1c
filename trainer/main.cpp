#include <torch/torch.h>
#include <iostream>
int main() { std::cout << torch::ones({2}).sum().item<float>() << " cuda=" << torch::cuda::is_available() << "\n"; }
