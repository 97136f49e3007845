__version__ = "0.1.0"

import warnings
# fastai 2.8 calls `torch.jit.script` at import, which torch 2.15 deprecates with a FutureWarning on every command's stderr;
# it is fastai's to fix and says nothing to asl_lib's users.
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)
