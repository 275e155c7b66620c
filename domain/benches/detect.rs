//! Detection throughput on one thread over ~1,000 realistic customer messages of about 100
//! characters. Run with `cargo bench -p aisales-domain --bench detect`; prints messages per second
//! and nanoseconds per message. Target: at least 200,000 messages per second.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aisales_domain::detect::detect;

const CORPUS_SIZE: usize = 1_000;
const RUN_FOR: Duration = Duration::from_secs(3);

const OPENERS: &[&str] =
    &["Здравствуйте!", "Добрый день.", "Привет 👋", "Доброе утро, подскажите", "Hello,", "Алло, на связи?", ""];

const BODIES: &[&str] = &[
    "нужна АКПП на камри 40, VIN {vin}, сколько будет стоить с доставкой до Казани?",
    "вин {vin} коробка автомат, есть в наличии контрактная? Пробег желательно небольшой",
    "кузов {frame}, нужна коробка вариатор, какая гарантия на агрегат и когда будет отправка?",
    "маркировка коробки {code}, интересует цена и сроки доставки в Новосибирск транспортной",
    "{code} есть? Нужна срочно, машина стоит в сервисе уже неделю 😢 Ответьте пожалуйста сегодня",
    "сколько стоит доставка в Екатеринбург и есть ли гарантия на агрегат? Нужна коробка на солярис",
    "перезвоните пожалуйста на +7 (916) 123-45-67, удобно после 18:00 по Москве, спасибо заранее",
    "От 25т.р. до 40 т.р. готов рассмотреть, главное чтобы без пинков и с проверкой на стенде",
    "What time do you open tomorrow? I need a gearbox for my car, AT please, Toyota Camry 2012",
    "ок, спасибо, жду фото и видео работы коробки на стенде, если всё ок то завтра оплачу",
    "рама {frame} механика 5 ступеней, есть что-то похожее? Можно и с другой машины если подходит",
    "птс: {vin}, двигатель 2.0, привод 4WD, нужна РКПП робот, какие есть варианты по цене?",
    "номер детали 31020-3VX2D, подойдёт ли на ниссан кашкай 2012? Или нужен другой вариатор",
    "у меня фокус3 1.6, ищу коробку DSG, точнее powershift, есть? Машина 2013 года, пробег 150 тыс",
    "а можно оплату картой при получении? и сколько по времени доставка до Краснодара занимает",
    "вот VIN {vin} и второй {vin2}, какой из них нужен для подбора коробки? Я запутался немного",
];

const VINS: &[&str] = &[
    "JTNBE46K803123456",
    "XW8ZZZ61ZEG012345",
    "1HGCM82633A004352",
    "XTA210990Y1234567",
    "Z94CB41AAGR123456",
    "WVWZZZ1JZ3W386752",
    "1HGCM82633AOO4352",
    "ХТА21099012345678",
];
const FRAMES: &[&str] = &["NZE141-6012345", "GX110-6012345", "ZZT240-0012345", "GDB-012345", "ACV30-0123456"];
const CODES: &[&str] = &["JF011E", "A245E", "U660E", "6HP19", "09G", "5HP24", "RE4F04A", "CD4E", "4L60E", "QR523MHA"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 33) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() % items.len()]
    }
}

fn corpus() -> Vec<String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..CORPUS_SIZE)
        .map(|_| {
            let body = rng.pick(BODIES);
            let text = format!("{} {}", rng.pick(OPENERS), body)
                .replace("{vin}", rng.pick(VINS))
                .replace("{vin2}", rng.pick(VINS))
                .replace("{frame}", rng.pick(FRAMES))
                .replace("{code}", rng.pick(CODES));
            text.trim().to_owned()
        })
        .collect()
}

fn main() {
    let corpus = corpus();
    let chars: usize = corpus.iter().map(|m| m.chars().count()).sum();
    let with_candidates = corpus.iter().filter(|m| !detect(m).candidates.is_empty()).count();

    // Warm-up.
    for message in &corpus {
        black_box(detect(black_box(message)));
    }

    let started = Instant::now();
    let mut messages = 0u64;
    while started.elapsed() < RUN_FOR {
        for message in &corpus {
            black_box(detect(black_box(message)));
        }
        messages += corpus.len() as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let per_second = messages as f64 / elapsed;
    println!(
        "detect: {} messages (avg {:.0} chars, {} with candidates) x {} rounds in {:.2} s",
        corpus.len(),
        chars as f64 / corpus.len() as f64,
        with_candidates,
        messages / corpus.len() as u64,
        elapsed
    );
    println!("detect: {per_second:.0} messages/s, {:.0} ns/message (one thread)", 1e9 / per_second);
}
