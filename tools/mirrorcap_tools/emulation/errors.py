"""The error every emulated rule raises: moto serializes it in the service's own protocol, with the code
and message given. (moto's ServiceException itself cannot be raised from outside moto's packages: moto
looks for an error model named after the exception's package.)"""

from moto.core.exceptions import ServiceException


class AwsError(ServiceException):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
