"""The application layer: every operation on jobs (`worker.jobs.service.Jobs`), the documents
they speak (`worker.jobs.documents`) and what they refuse (`worker.jobs.errors`). Every
interface goes through it; none opens a database session of its own."""
