"""Error messages: raised when the transformed function is called, of the right type, naming
what was wrong (the operation, the shapes, the arguments, the fix)."""
import numpy as np
import pytest

import reaxgrad.core as rc
import reaxgrad.core.lax as lax
import reaxgrad.core.numpy as jnp


def _frames(excinfo):
    return [entry.name for entry in excinfo.traceback]


def test_grad_of_non_scalar_output():
    with pytest.raises(TypeError, match=r"scalar output.*shape \(3,\)"):
        rc.grad(lambda a: a * 2)(np.ones(3))
    with pytest.raises(TypeError, match=r"scalar output.*shape \(2, 1\)"):
        rc.grad(lambda a: jnp.reshape(a, (2, 1)))(np.ones(2))
    with pytest.raises(TypeError, match="scalar output"):
        rc.grad(lambda a: (a, a))(1.0)
    with pytest.raises(TypeError, match="floating-point output.*int64"):
        rc.grad(lambda a: jnp.sum(a > 0))(np.ones(3))


def test_integer_inputs_to_grad():
    with pytest.raises(TypeError, match=r"argument 0 has dtype int64"):
        rc.grad(lambda a: a * 2.0)(np.arange(3))
    with pytest.raises(TypeError, match=r"argument 1 has dtype bool"):
        rc.grad(lambda a, b: a, argnums=(0, 1))(1.0, True)
    with pytest.raises(TypeError, match=r"argument 0 has dtype int64"):
        rc.grad(lambda a: a * 1.0)(3)
    with pytest.raises(TypeError, match="jacrev.*int64"):
        rc.jacrev(lambda a: a * 1.0)(np.arange(2))
    # integer arguments outside argnums are fine
    assert rc.grad(lambda a, n: a * n)(2.0, 3) == 3.0


@pytest.mark.parametrize("jit", [False, True])
def test_mismatched_shapes_name_the_op_and_shapes(jit):
    wrap = rc.jit if jit else (lambda f: f)
    with pytest.raises(ValueError, match=r"add: shapes \(3,\), \(4,\) cannot be broadcast"):
        wrap(jnp.add)(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"multiply: shapes \(2, 3\), \(2,\)"):
        wrap(jnp.multiply)(jnp.ones((2, 3)), jnp.ones(2))
    with pytest.raises(ValueError, match=r"subtract: shapes \(2,\), \(5,\)"):
        rc.grad(lambda a: jnp.sum(a - jnp.ones(5)))(np.ones(2))  # operator on a tracer
    with pytest.raises(ValueError, match=r"dot: shapes \(2, 3\) and \(4,\) not aligned"):
        wrap(jnp.dot)(np.ones((2, 3)), np.ones(4))
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 2\) not aligned"):
        wrap(jnp.matmul)(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="einsum: index 'j' has sizes 3 and 4"):
        wrap(lambda a, b: jnp.einsum("ij,jk->ik", a, b))(np.ones((2, 3)), np.ones((4, 2)))


def test_primitive_shape_and_dtype_errors_under_tracing():
    with pytest.raises(TypeError, match=r"add: operand shapes must be equal.*\(3,\), \(4,\)"):
        rc.jit(lax.add)(np.ones(3), np.ones(4))
    with pytest.raises(TypeError, match="add: operand dtypes must match, got float64, float32"):
        rc.jit(lax.add)(np.ones(3), np.ones(3, np.float32))
    with pytest.raises(TypeError, match=r"dot_general: incompatible shapes \(2, 3\) and \(2, 3\)"):
        rc.jit(lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ()))))(
            np.ones((2, 3)), np.ones((2, 3))
        )
    with pytest.raises(TypeError, match=r"solve: right-hand side \(2, 1\)"):
        rc.jit(lax.solve)(np.eye(3), np.ones((2, 1)))


def test_vmap_axis_sizes_that_disagree():
    sizes = r"inconsistent sizes.*leaf 0 has size 3.*leaf 1 has size 4"
    with pytest.raises(ValueError, match=sizes):
        rc.vmap(lambda a, b: a + b)(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"size 2 along axis 1.*size 3 along axis 0"):
        rc.vmap(lambda a, b: a, in_axes=(1, 0))(np.ones((3, 2)), np.ones(3))


def test_vmap_axis_specifications_out_of_range():
    with pytest.raises(ValueError, match=r"axis 2, but it has rank 2 \(shape \(3, 4\)\)"):
        rc.vmap(lambda a: a, in_axes=2)(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"axis -2, but it has rank 1"):
        rc.vmap(lambda a: a, in_axes=-2)(np.ones(3))
    with pytest.raises(ValueError, match="axis 0, but it has rank 0"):
        rc.vmap(lambda a, b: a * b)(np.ones(3), 2.0)
    with pytest.raises(ValueError, match="out_axes 3 out of range for rank 2"):
        rc.vmap(lambda a: a, out_axes=3)(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"in_axes \(0,\) has 1 entries.*2 positional"):
        rc.vmap(lambda a, b: a, in_axes=(0,))(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="at least one mapped axis"):
        rc.vmap(lambda a: a, in_axes=None)(np.ones(3))
    with pytest.raises(ValueError, match="out_axes=None requires an output that is not batched"):
        rc.vmap(lambda a: a, out_axes=None)(np.ones(3))


def test_non_hashable_static_argument():
    f = rc.jit(lambda a, s: a * len(s), static_argnums=1)
    with pytest.raises(TypeError, match=r"static argument 1 of type list is not hashable"):
        f(np.ones(2), [1, 2])
    np.testing.assert_array_equal(f(np.ones(2), (1, 2)), [2.0, 2.0])
    with pytest.raises(TypeError, match="argument leaf of type str is not an array"):
        rc.jit(lambda a, s: a)(1.0, "name")


def test_traced_value_as_python_bool_or_int_inside_jit():
    def relu(x):
        return x if x > 0 else 0.0 * x

    with pytest.raises(rc.ConcretizationError, match=r"(?s)bool.*where.*static_argnums") as info:
        rc.jit(relu)(1.0)
    assert "relu" in _frames(info)  # the traceback reaches the offending line

    def zeros_of_size(n):
        return jnp.zeros(int(n))

    with pytest.raises(rc.ConcretizationError, match=r"(?s)i64\[\].*where.*static_argnums"):
        rc.jit(zeros_of_size)(3)
    # marking it static is the documented fix
    assert rc.jit(zeros_of_size, static_argnums=0)(3).shape == (3,)
    with pytest.raises(rc.ConcretizationError, match="where"):
        rc.vmap(relu)(np.ones(3))
    # ConcretizationError is a TypeError, as in JAX
    assert issubclass(rc.ConcretizationError, TypeError)
    # under grad alone the value is concrete: Python control flow is allowed
    assert rc.grad(relu)(2.0) == 1.0 and rc.grad(relu)(-2.0) == 0.0


def test_other_tracing_errors():
    with pytest.raises(IndexError, match="boolean mask indexing of a traced array"):
        rc.jit(lambda a, m: a[m])(np.ones(3), np.array([True, False, True]))
    with pytest.raises(IndexError, match="indices must be integers.*float64"):
        rc.jit(lambda a, i: a[i])(np.ones(3), np.array([0.0]))
    with pytest.raises(TypeError, match="arange: its bounds must be concrete"):
        rc.jit(lambda n: jnp.arange(n))(3)
    with pytest.raises(TypeError, match="unhashable"):
        rc.jit(lambda a: {a: 1})(1.0)


def test_escaped_tracers_are_reported():
    for transform in (rc.jit, rc.grad, rc.vmap):
        leaked = []

        def keep(x, leaked=leaked):
            leaked.append(x)
            return jnp.sum(x)

        transform(keep)(np.ones(2))
        with pytest.raises(rc.UnexpectedTracerError, match="escaped"):
            leaked[0] * 2.0


def test_argument_structure_errors():
    with pytest.raises(ValueError, match="argnums 2 out of range.*1 positional"):
        rc.grad(lambda a: a, argnums=2)(1.0)
    with pytest.raises(ValueError, match=r"cotangent shape \(4,\) differs from output shape"):
        rc.vjp(lambda a: a * 2, np.ones(3))[1](np.ones(4))
    with pytest.raises(TypeError, match="has_aux=True requires the function to return a pair"):
        rc.grad(lambda a: a * 2, has_aux=True)(1.0)
    with pytest.raises(ValueError, match=r"primal and tangent shapes differ: \(\) vs \(2,\)"):
        rc.jvp(lambda a: a, (1.0,), (np.ones(2),))
    with pytest.raises(TypeError, match="primal structure"):
        rc.jvp(lambda a: a, (1.0,), ((1.0,),))
