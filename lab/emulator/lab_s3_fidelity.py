"""S3 behaviours of the lab emulator that moto lacks: upload checksums, archived objects, and
objects kept on disk rather than in memory.

Part of the lab emulator, kept apart so that lab_emulator.py stays readable; its module
docstring lists each behaviour with the others. S3Fidelity is a WSGI middleware in front of
moto for signed S3 calls (Authorization header or pre-signed query); the patches of moto
below it are applied at start. The lab's S3 clients address buckets by path, as lab_authz
reads them.
"""

import base64
import codecs
import datetime
import hashlib
import os
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ElementTree
from urllib.parse import parse_qs, unquote, urlsplit

import lab_authz

# The checksum algorithms S3 takes, as they appear in x-amz-checksum-<alg>.
_ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
# Storage classes whose objects must be restored before they can be read.
_ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
# The classes a lifecycle rule can move objects to.
_TRANSITION_CLASSES = ("STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
# Sub-resources that make a PUT on a key something other than PutObject or UploadPart.
_OBJECT_SUBRESOURCES = ("acl", "tagging", "retention", "legal-hold", "renameObject")


class _S3Error(Exception):
    """An S3 error answer: HTTP status, error code, message."""

    def __init__(self, status: str, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _respond(start_response, status: str, body: bytes = b"", content_type: str | None = None):
    request_id = uuid.uuid4().hex[:16].upper()
    headers = [("Content-Length", str(len(body))), ("x-amz-request-id", request_id),
               ("x-amz-id-2", base64.b64encode(uuid.uuid4().bytes).decode())]
    if content_type:
        headers.append(("Content-Type", content_type))
    start_response(status, headers)
    return [body]


def _error(start_response, error: _S3Error, resource: str):
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{error.code}</Code>'
            f"<Message>{_xml(error.message)}</Message><Resource>{_xml(resource)}</Resource>"
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>").encode()
    return _respond(start_response, error.status, body, "application/xml")


def _target(environ) -> tuple[str, str, dict]:
    """(bucket, key, query) of a path-style S3 request.

    Read from the raw request line: PATH_INFO is already decoded (as Latin-1), which would
    mangle keys holding '%' or non-ASCII characters.
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    path = unquote(urlsplit(raw).path) if raw else environ.get("PATH_INFO", "")
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key, parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)


def sent_checksum(environ, query: dict) -> str | None:
    """The algorithm of the checksum a request carries, or None.

    As a header (x-amz-checksum-<alg>), in a pre-signed URL's query, or announced as a
    trailer of an aws-chunked body (x-amz-trailer: x-amz-checksum-<alg>), as the AWS SDKs
    send it. x-amz-sdk-checksum-algorithm alone carries no checksum: S3 wants the value.
    """
    names = {name.lower() for name in query}
    for algorithm in _ALGORITHMS:
        if environ.get(f"HTTP_X_AMZ_CHECKSUM_{algorithm.upper()}") or f"x-amz-checksum-{algorithm}" in names:
            return algorithm
    for name in environ.get("HTTP_X_AMZ_TRAILER", "").lower().split(","):
        name = name.strip()
        if name.startswith("x-amz-checksum-") and name[len("x-amz-checksum-"):] in _ALGORITHMS:
            return name[len("x-amz-checksum-"):]
    return None


def _payload(environ, body: bytes) -> bytes:
    """The object's bytes: an aws-chunked body decoded (its chunk signatures and trailer dropped)."""
    streaming = environ.get("HTTP_X_AMZ_CONTENT_SHA256", "").startswith("STREAMING-")
    if "aws-chunked" not in environ.get("HTTP_CONTENT_ENCODING", "") and not streaming:
        return body
    data, position = bytearray(), 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            break
        try:
            size = int(body[position:line_end].split(b";")[0], 16)
        except ValueError:
            raise _S3Error("400 Bad Request", "IncompleteBody",
                           "The request body terminated unexpectedly")
        if size == 0:
            break
        data += body[line_end + 2:line_end + 2 + size]
        position = line_end + 2 + size + 2
    return bytes(data)


def _check_md5(environ, body: bytes) -> None:
    digest = environ.get("HTTP_CONTENT_MD5", "")
    try:
        expected = base64.b64decode(digest, validate=True)
    except ValueError:
        expected = b""
    if len(expected) != 16:
        raise _S3Error("400 Bad Request", "InvalidDigest", "The Content-MD5 you specified was invalid.")
    if hashlib.md5(_payload(environ, body)).digest() != expected:
        raise _S3Error("400 Bad Request", "BadDigest", "The Content-MD5 you specified did not match what we received.")


def _part_checksums_missing(body: bytes, algorithm: str) -> int | None:
    """The first part of a CompleteMultipartUpload body without its Checksum<ALG>, or None.

    None too when the body is not the XML expected: moto then answers as S3 does.
    """
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    wanted = "Checksum" + algorithm.upper()
    for part in root:
        if part.tag.rsplit("}", 1)[-1] != "Part":
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "").strip() for child in part}
        if not fields.get(wanted):
            try:
                return int(fields.get("PartNumber", ""))
            except ValueError:
                return None
    return None


def _restore_days(body: bytes) -> int | None:
    """Days of a RestoreRequest, or None when it names none (moto answers those)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    for child in root:
        if child.tag.rsplit("}", 1)[-1] == "Days":
            try:
                return int((child.text or "").strip())
            except ValueError:
                return None
    return None


def _naive_utc(epoch: float) -> datetime.datetime:
    # moto keeps its dates as naive UTC datetimes.
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).replace(tzinfo=None)


class S3Fidelity:
    """WSGI middleware for the S3 checks moto lacks, and the lab's archive control.

    `read_body` is the emulator's body reader, which leaves the body in place for moto.
    """

    def __init__(self, app, read_body, restore_seconds: float):
        self.app = app
        self.read_body = read_body
        self.restore_seconds = restore_seconds
        # Held over a restore's check and start, and over an archive move.
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        signed = lab_authz.signer(environ)
        if signed is None or signed[2] != "s3":
            return self.app(environ, start_response)
        bucket_name, key_name, query = _target(environ)
        method = environ.get("REQUEST_METHOD", "")
        try:
            if key_name and method == "PUT" and not environ.get("HTTP_X_AMZ_COPY_SOURCE") \
                    and not any(sub in query for sub in _OBJECT_SUBRESOURCES):
                self._check_upload(environ, bucket_name, query)
            elif key_name and method == "POST" and "uploadId" in query:
                self._check_completion(environ, bucket_name, query)
            elif key_name and method == "POST" and "restore" in query:
                status = self._restore(environ, bucket_name, key_name, query)
                if status is not None:
                    return _respond(start_response, status)
            elif not key_name and method == "GET" and "versions" in query:
                listing = self._list_versions(bucket_name, query)
                if listing is not None:
                    return _respond(start_response, "200 OK", listing, "application/xml")
        except _S3Error as error:
            self.read_body(environ)  # the whole request is read before the answer
            return _error(start_response, error, f"/{bucket_name}/{key_name}")
        return self.app(environ, start_response)

    def _list_versions(self, bucket_name: str, query: dict) -> bytes | None:
        """ListObjectVersions of one prefix, answered from moto's records without copying.

        moto deep-copies every object of the bucket, data included, on every listing: a
        verify that lists the versions of each seal would copy every disk image of the lab
        dozens of times. AWS lists versions without touching the data; so does the lab.
        Paging, markers and delimiters are left to moto.
        """
        from xml.sax.saxutils import escape
        from moto.s3.models import FakeDeleteMarker

        if any(name in query for name in ("delimiter", "key-marker", "version-id-marker")):
            return None
        bucket = lab_authz.find_bucket(bucket_name)
        if bucket is None:
            return None
        prefix = (query.get("prefix") or [""])[0]
        max_keys = int((query.get("max-keys") or ["1000"])[0] or 1000)
        entries = []
        for name, versions in sorted(bucket.keys.iterlists(), key=lambda item: item[0]):
            if not name.startswith(prefix):
                continue
            newest_first = sorted(versions, key=lambda v: v.last_modified, reverse=True)
            for n, version in enumerate(newest_first):
                common = (f"<Key>{escape(name)}</Key><VersionId>{escape(str(version.version_id))}</VersionId>"
                          f"<IsLatest>{'true' if n == 0 else 'false'}</IsLatest>"
                          f"<LastModified>{version.last_modified_ISO8601}</LastModified>")
                if isinstance(version, FakeDeleteMarker):
                    entries.append(f"<DeleteMarker>{common}</DeleteMarker>")
                else:
                    entries.append(f"<Version>{common}<ETag>{escape(version.etag)}</ETag>"
                                   f"<Size>{version.size}</Size>"
                                   f"<StorageClass>{escape(version.storage_class)}</StorageClass></Version>")
        if len(entries) > max_keys:
            return None
        return ('<?xml version="1.0" encoding="UTF-8"?>'
                '<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Name>{escape(bucket_name)}</Name><Prefix>{escape(prefix)}</Prefix>"
                f"<KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>"
                f"<MaxKeys>{max_keys}</MaxKeys><IsTruncated>false</IsTruncated>"
                + "".join(entries) + "</ListVersionsResult>").encode()

    def _check_upload(self, environ, bucket_name: str, query: dict) -> None:
        """PutObject and UploadPart: Object Lock's checksum rule, Content-MD5, the upload's algorithm."""
        bucket = lab_authz.find_bucket(bucket_name)
        if bucket is None:
            return  # moto answers NoSuchBucket
        upload_id = (query.get("uploadId") or [""])[0]
        part = bool(upload_id) and "partNumber" in query
        algorithm = sent_checksum(environ, query)
        has_md5 = "HTTP_CONTENT_MD5" in environ
        if bucket.object_lock_enabled and not has_md5 and algorithm is None:
            raise _S3Error("400 Bad Request", "InvalidRequest",
                           "Content-MD5 OR x-amz-checksum- HTTP header is required for "
                           f"{'Put Part' if part else 'Put Object'} requests with Object Lock parameters")
        if has_md5:
            _check_md5(environ, self.read_body(environ))
        if part:
            multipart = bucket.multiparts.get(upload_id)
            expected = ((multipart.metadata.get("x-amz-checksum-algorithm") or "").lower()
                        if multipart is not None else "")
            if expected and algorithm != expected:
                raise _S3Error("400 Bad Request", "InvalidRequest",
                               f"Checksum Type mismatch occurred, expected checksum Type: {expected}, "
                               f"actual checksum Type: {algorithm or 'null'}")
        if algorithm and not environ.get("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"):
            # moto reads a request's checksum only under the algorithm this header names, and
            # its own Object Lock check wants this header or Content-MD5: name the one sent.
            environ["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"] = algorithm.upper()

    def _check_completion(self, environ, bucket_name: str, query: dict) -> None:
        """CompleteMultipartUpload of an upload created with an algorithm lists each part's checksum."""
        bucket = lab_authz.find_bucket(bucket_name)
        multipart = bucket.multiparts.get(query["uploadId"][0]) if bucket is not None else None
        algorithm = (multipart.metadata.get("x-amz-checksum-algorithm") or "") if multipart is not None else ""
        if not algorithm:
            return
        missing = _part_checksums_missing(self.read_body(environ), algorithm)
        if missing is not None:
            raise _S3Error("400 Bad Request", "InvalidRequest",
                           f"The upload was created using a {algorithm.lower()} checksum. The complete request "
                           f"must include the checksum for each part. It was missing for part {missing} in the request.")

    def _restore(self, environ, bucket_name: str, key_name: str, query: dict) -> str | None:
        """RestoreObject of an archived object version: the status of the answer, or None for moto.

        A new restore takes `restore_seconds`; while it runs a second request is refused.
        """
        from moto.s3.models import s3_backends

        bucket = lab_authz.find_bucket(bucket_name)
        if bucket is None:
            return None
        version_id = (query.get("versionId") or [None])[0]
        key = s3_backends[bucket.account_id]["aws"].get_object(bucket_name, key_name, version_id=version_id)
        if key is None and version_id is not None:
            # moto would restore the current version instead.
            raise _S3Error("404 Not Found", "NoSuchVersion", "The specified version does not exist.")
        if key is None or key.storage_class not in _ARCHIVE_CLASSES:
            return None  # moto answers NoSuchKey, or InvalidObjectState
        days = _restore_days(self.read_body(environ))
        if days is None:
            return None
        with self.lock:
            now = time.time()
            ready = getattr(key, "irf_restore_ready", None)
            if ready is not None and now < ready:
                raise _S3Error("409 Conflict", "RestoreAlreadyInProgress", "Object restore is already in progress")
            if key.expiry_date is not None:
                # Restored already: S3 only moves the copy's expiry.
                key.set_expiry(_naive_utc(now) + datetime.timedelta(days=days))
                return "200 OK"
            key.irf_restore_ready = now + self.restore_seconds
            key.restore(days)  # moto's restore: its expiry and its notification
            # The copy lasts `days` from the restore's end, not its start.
            key.set_expiry(_naive_utc(key.irf_restore_ready) + datetime.timedelta(days=days))
        return "202 Accepted"

    def archive(self, request: dict) -> dict:
        """Moves every version under a prefix to an archive class, as a lifecycle transition does.

        Versions already in that class are left as they are (a restored copy stays); others
        lose any restored copy. Raises LookupError for an unknown bucket, ValueError for a bad request.
        """
        from moto.s3.models import FakeKey

        bucket_name, prefix = request.get("bucket"), request.get("prefix", "")
        storage_class = request.get("storage_class", "GLACIER")
        if not isinstance(bucket_name, str) or not isinstance(prefix, str):
            raise ValueError('expected {"bucket": name, "prefix": text, "storage_class": class}')
        if storage_class not in _TRANSITION_CLASSES:
            raise ValueError(f"storage_class must be one of {', '.join(_TRANSITION_CLASSES)}, not {storage_class!r}")
        bucket = lab_authz.find_bucket(bucket_name)
        if bucket is None:
            raise LookupError(f"no bucket {bucket_name}")
        moved = 0
        with self.lock:
            for name, versions in list(bucket.keys.iterlists()):
                if not name.startswith(prefix):
                    continue
                for version in versions:
                    # Delete markers have no storage class.
                    if not isinstance(version, FakeKey) or version.storage_class == storage_class:
                        continue
                    # Template 1's rule archives only objects above 128 KiB (as S3's default
                    # minimum transition size does): manifests and ledger entries stay.
                    if version.size <= _ARCHIVE_MIN_SIZE:
                        continue
                    version.set_storage_class(storage_class)
                    version.set_expiry(None)
                    version.irf_restore_ready = None
                    moved += 1
        return {"archived": moved}


# The smallest object template 1's archive rule moves (ObjectSizeGreaterThan).
_ARCHIVE_MIN_SIZE = 131072


def restores_take_time() -> None:
    """A restore reports ongoing-request="true" until the lab's restore time has passed.

    moto completes a restore at once (its key-restore state advances immediately); the lab
    marks each restore it starts with the time it ends (S3Fidelity._restore).
    """
    from moto.s3.models import FakeKey

    original = FakeKey.status

    def status(self):
        ready = getattr(self, "irf_restore_ready", None)
        if ready is not None and time.time() < ready:
            return "IN_PROGRESS"
        return original.fget(self)

    FakeKey.status = property(status, original.fset)


def archived_metadata_is_readable() -> None:
    """Only GetObject refuses an archived object: its tags, ACL and legal hold read as in AWS.

    moto refuses every read that looks the object up through its GetObject path.
    """
    from moto.s3.responses import S3Response

    get_key, get_object = S3Response._get_key, S3Response.get_object

    def read_data(self, *args, **kwargs):
        self.irf_reads_data = True
        return get_object(self, *args, **kwargs)

    def look_up(self, validate_storage_class: bool = True):
        return get_key(self, validate_storage_class and getattr(self, "irf_reads_data", False))

    S3Response.get_object = read_data
    S3Response._get_key = look_up


def part_checksums_are_listed() -> None:
    """ListParts reports each part's checksum of an upload created with an algorithm, as in AWS,
    under AWS's root element (ListPartsResult).

    moto checks and keeps no part checksum and lists none, so a client that completes an
    upload from ListParts (as one resuming does) could not name them. UploadPart keeps the
    checksum moto answers with: the one sent, or computed from the part.
    """
    from moto.s3.responses import S3Response

    upload_part, list_parts = S3Response.upload_part, S3Response.list_parts

    def algorithm_and_upload(response):
        multipart = response.backend.get_bucket(response.bucket_name).multiparts.get(response._get_param("uploadId"))
        algorithm = multipart.metadata.get("x-amz-checksum-algorithm") if multipart is not None else None
        return (algorithm or "").upper(), multipart

    def keep_checksum(self):
        status, headers, body = upload_part(self)
        algorithm, multipart = algorithm_and_upload(self)
        value = headers.get(f"x-amz-checksum-{algorithm.lower()}") if algorithm else None
        if value:
            multipart.parts[self._get_int_param("partNumber")].irf_checksum = value
        return status, headers, body

    def list_as_aws(self):
        # moto names the answer's root ListPartsResponse; AWS (and its SDKs, which refuse
        # any other root) says ListPartsResult.
        answer = list_with_checksums(self)
        if isinstance(answer, tuple) and len(answer) == 3 and isinstance(answer[2], (str, bytes)):
            status, headers, body = answer
            old, new = (b"ListPartsResponse", b"ListPartsResult") if isinstance(body, bytes) \
                else ("ListPartsResponse", "ListPartsResult")
            body = body.replace(old, new)
            if "Content-Length" in headers:
                headers["Content-Length"] = str(len(body))
            return status, headers, body
        return answer

    def list_with_checksums(self):
        algorithm, multipart = algorithm_and_upload(self)
        if not algorithm:
            return list_parts(self)
        serialized = self.serialized

        def add_checksums(result):
            for part in result.result.get("Parts", []):
                value = getattr(multipart.parts.get(part["PartNumber"]), "irf_checksum", None)
                if value:
                    part[f"Checksum{algorithm}"] = value
            result.result["ChecksumAlgorithm"] = algorithm
            return serialized(result)

        self.serialized = add_checksums
        return list_parts(self)

    S3Response.upload_part = keep_checksum
    S3Response.list_parts = list_as_aws


# Objects are copied in chunks of this size; a chunk of zeros is left a hole in the object's
# file, so a volume image takes the disk space of the data it holds.
_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)
# Set while moto answers a GetObject: an object's value is then a window on its file.
_answering_get = threading.local()


def _write_sparse(destination, source, size: int) -> None:
    """Copies `size` bytes read from `source` (a file, or a buffer) to `destination` at its
    current position, leaving a hole for each chunk of zeros. The destination is a file
    already (not memory): a hole in memory would be zeros allocated."""
    start = destination.tell()
    view = memoryview(source) if not hasattr(source, "read") else None
    copied = 0
    while copied < size:
        length = min(_CHUNK, size - copied)
        chunk = view[copied:copied + length] if view is not None else source.read(length)
        if len(chunk) != length:
            raise OSError(f"object data ended at {copied + len(chunk)} of {size} bytes")
        if chunk != _ZEROS[:length]:
            destination.seek(start + copied)
            destination.write(chunk)
        copied += length
    destination.truncate(start + size)
    destination.seek(start + size)


class _ObjectWindow:
    """A byte range of an object's file, read a chunk at a time when iterated.

    What moto's GetObject answers with (its body, or the part a Range names): werkzeug
    streams any iterable body, so reading a 30 GiB image costs one chunk of memory.
    """

    def __init__(self, key, start: int, end: int):
        self.key, self.start, self.end = key, start, end

    def __len__(self) -> int:
        return self.end - self.start

    def __bool__(self) -> bool:
        return self.end > self.start

    def __getitem__(self, window):
        if not isinstance(window, slice) or window.step not in (None, 1):
            raise TypeError("an object is read by contiguous ranges only")
        first, stop, _ = window.indices(len(self))
        return _ObjectWindow(self.key, self.start + first, self.start + max(first, stop))

    def __iter__(self):
        position = self.start
        while position < self.end:
            with self.key.lock:
                self.key._value_buffer.seek(position)
                chunk = self.key._value_buffer.read(min(_CHUNK, self.end - position))
            if not chunk:
                raise OSError(f"object {self.key.name} ended at {position} of {self.end} bytes")
            position += len(chunk)
            yield chunk


class _AssembledObject:
    """A completed multipart upload's data, already in its own file, for FakeKey to adopt."""

    def __init__(self, file, size: int):
        self.file, self.size = file, size


def objects_live_on_disk(directory: str | None) -> None:
    """Object data is kept in files under `directory` and never held whole in memory.

    moto keeps each object in a spooled file but completes a multipart upload by joining
    every part in memory twice (an 8 GiB volume image took the emulator to 16.5 GB and the
    kernel ended it), and answers each GetObject, ranged too, by reading the whole object.
    Here a completed upload streams its parts into the object's file, a GetObject reads its
    range from the file as it is sent, and zeros are left as holes. The files are unlinked
    at creation (Python's temporary files), so they go with the emulator.
    """
    from moto.s3.models import FakeKey, FakeMultipart, MultipartChecksumBuilder
    from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
    from moto.s3.responses import S3Response
    from moto.s3.models import S3_UPLOAD_PART_MIN_SIZE
    from moto.utilities.utils import md5_hash

    if directory:
        os.makedirs(directory, exist_ok=True)
        tempfile.tempdir = directory

    read_value, write_value = FakeKey.value.fget, FakeKey.value.fset

    def value(self):
        if getattr(_answering_get, "active", False):
            return _ObjectWindow(self, 0, self.size)
        return read_value(self)

    def store(self, new_value):
        if isinstance(new_value, _AssembledObject):
            self._value_buffer.close()
            self._value_buffer, self.contentsize = new_value.file, new_value.size
            return
        if not isinstance(new_value, (bytes, bytearray)) or len(new_value) <= self._max_buffer_size:
            return write_value(self, new_value)
        self._value_buffer.seek(0)
        self._value_buffer.truncate()
        self._value_buffer.rollover()
        _write_sparse(self._value_buffer, new_value, len(new_value))
        self.contentsize = len(new_value)

    FakeKey.value = property(value, store)

    def complete(self, body):
        # moto's checks and answers, with the data streamed to a file instead of joined.
        checksums = MultipartChecksumBuilder(self.metadata.get("x-amz-checksum-algorithm"),
                                             self.metadata.get("x-amz-checksum-type"))
        assembled = tempfile.SpooledTemporaryFile(0)
        assembled.rollover()
        md5s, size, count, last = bytearray(), 0, 0, None
        try:
            for number, etag in body:
                part = self.parts.get(number)
                part_etag = part.etag.replace('"', "") if part is not None else None
                if part is None or part_etag != etag.replace('"', ""):
                    raise InvalidPart()
                if last is not None and last.contentsize < S3_UPLOAD_PART_MIN_SIZE:
                    raise EntityTooSmall()
                md5s.extend(codecs.decode(part_etag, "hex"))
                with part.lock:
                    part._value_buffer.seek(0)
                    checksums.addPart(part._value_buffer.read())
                    part._value_buffer.seek(0)
                    _write_sparse(assembled, part._value_buffer, part.contentsize)
                size += part.contentsize
                last, count = part, count + 1
            if count == 0:
                raise MalformedXML()
        except BaseException:
            assembled.close()
            raise
        for part in self.parts.values():
            part.dispose()  # the object holds the data now; ListParts ends with the upload
        etag = md5_hash()
        etag.update(bytes(md5s))
        return _AssembledObject(assembled, size), f"{etag.hexdigest()}-{count}", checksums.build()

    FakeMultipart.complete = complete

    get_object = S3Response.get_object

    def answer_get(self, *args, **kwargs):
        _answering_get.active = True
        try:
            return get_object(self, *args, **kwargs)
        finally:
            _answering_get.active = False

    S3Response.get_object = answer_get
