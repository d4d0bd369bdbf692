"""Helpers shared by the fitting tests."""


def assert_loss_gradient(problem, theta, grad, labels, rel=1e-5, step=1e-6):
    """Every component of ``grad`` against central differences of problem's loss."""
    for k in range(len(theta)):
        h = step * max(1.0, abs(theta[k]))
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        fd = (problem.loss_and_grad(up)[0] - problem.loss_and_grad(down)[0]) / (2 * h)
        assert abs(fd - grad[k]) <= rel * max(1.0, abs(fd)), (labels[k], fd, grad[k])
