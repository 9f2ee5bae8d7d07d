# TEST STAND-IN: what PyPI's placeholder `torch-neuronx` does on import (the real SDK is
# served by the Neuron pip repository). Message as quoted in aws-neuron/aws-neuron-sdk#916.
raise ImportError(
    "WRONG PACKAGE. Please install the package from Neuron Repository - "
    "[pip.repos.neuron.amazonaws.com](http://pip.repos.neuron.amazonaws.com/)"
)
