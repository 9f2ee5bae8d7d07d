"""TEST STAND-IN for the `neuronxcc` package (neuronx-cc). NOT the Neuron compiler.

Only its version is read (`neuronxcc.__version__`, as optimum-neuron's get_neuronxcc_version
does). 2.28.7631.0 is the compiler of Neuron 2.33 (the components index of the 2.33 docs).
"""

__version__ = "2.28.7631.0+standin"
