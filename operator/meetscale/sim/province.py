"""The province's agencies, schools and meeting topics the sample traces are drawn from
(Nghe An, April 2020; times in +07:00)."""

from __future__ import annotations

from datetime import timedelta, timezone

TZ = timezone(timedelta(hours=7))

DEPARTMENTS = [
    "so-y-te",
    "so-gd-dt",
    "so-tt-tt",
    "so-tai-chinh",
    "so-ke-hoach-dau-tu",
    "so-noi-vu",
    "so-tu-phap",
    "so-cong-thuong",
    "so-nong-nghiep-ptnt",
    "so-tai-nguyen-moi-truong",
    "so-giao-thong-van-tai",
    "so-xay-dung",
    "so-lao-dong-tbxh",
    "so-van-hoa-the-thao",
    "so-du-lich",
    "so-khoa-hoc-cong-nghe",
    "so-ngoai-vu",
    "thanh-tra-tinh",
    "ban-dan-toc",
    "van-phong-ubnd-tinh",
]

DISTRICTS = [
    "ubnd-tp-vinh",
    "ubnd-tx-cua-lo",
    "ubnd-tx-thai-hoa",
    "ubnd-tx-hoang-mai",
    "ubnd-huyen-anh-son",
    "ubnd-huyen-con-cuong",
    "ubnd-huyen-dien-chau",
    "ubnd-huyen-do-luong",
    "ubnd-huyen-hung-nguyen",
    "ubnd-huyen-ky-son",
    "ubnd-huyen-nam-dan",
    "ubnd-huyen-nghi-loc",
    "ubnd-huyen-nghia-dan",
    "ubnd-huyen-que-phong",
    "ubnd-huyen-quy-chau",
    "ubnd-huyen-quy-hop",
    "ubnd-huyen-quynh-luu",
    "ubnd-huyen-tan-ky",
    "ubnd-huyen-thanh-chuong",
    "ubnd-huyen-tuong-duong",
    "ubnd-huyen-yen-thanh",
]

SCHOOLS = [
    "thpt-chuyen-phan-boi-chau",
    "thpt-huynh-thuc-khang",
    "thpt-ha-huy-tap",
    "thpt-le-viet-thuat",
    "thpt-cua-lo",
    "thpt-dien-chau-2",
    "thpt-do-luong-1",
    "thpt-nam-dan-1",
    "thpt-quynh-luu-1",
    "thpt-thanh-chuong-1",
    "thpt-yen-thanh-2",
    "thpt-nghi-loc-1",
]

# (start, end) of the teaching periods ("tiết") of a school day
PERIODS = [
    ("07:00", "07:45"),
    ("07:50", "08:35"),
    ("08:50", "09:35"),
    ("09:40", "10:25"),
    ("10:30", "11:15"),
    ("13:30", "14:15"),
    ("14:20", "15:05"),
    ("15:20", "16:05"),
    ("16:10", "16:55"),
]
SUBJECTS = ["toan", "van", "anh", "ly", "hoa", "sinh", "su", "dia", "gdcd", "tin"]

DEPT_TOPICS = [
    "hop-giao-ban",
    "hop-chuyen-de",
    "trien-khai-ke-hoach",
    "tong-ket-quy-1",
    "hop-xet-duyet",
    "hop-ban-chi-dao",
    "tap-huan",
    "hop-thao-luan",
]
DISTRICT_TOPICS = ["giao-ban-voi-xa", "phong-chong-dich", "hop-ubnd", "trien-khai-chi-thi"]
ADHOC_TOPICS = ["hop-khan", "trao-doi-nhanh", "xu-ly-su-viec", "hop-dot-xuat"]
