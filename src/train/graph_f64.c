/* The training graph in double: the gradient tests' finite differences (graph_impl.h). */
#include "train/graph.h"

#define REAL double
#define GN(x) x##_d
#include "train/graph_impl.h"
